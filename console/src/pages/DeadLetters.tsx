import { useState } from 'preact/hooks';
import { del, get, messageOf, post, seg } from '../api';
import { type Column, Table } from '../components/Table';
import { ErrorText, StatusText, Time } from '../components/Values';
import { usePoll } from '../hooks';
import type { DeadLetter, Page } from '../types';

const LIMIT = 100;
const POLL_MS = 5000;
const STATES = ['open', 'replayed', 'discarded'] as const;

/** Jobs that failed for good (admins only): replayed under their own job id, or discarded with a reason. */
export function DeadLettersPage() {
  const [state, setState] = useState('');
  const list = usePoll(() => get<Page<DeadLetter>>('/api/v1/dead-letters', { limit: LIMIT, state }), [state], POLL_MS);
  const [status, setStatus] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);

  const run = async (id: string, action: () => Promise<string>) => {
    setBusy(id);
    setError(null);
    try {
      setStatus(await action());
      await list.reload();
      return true;
    } catch (err) {
      setStatus(null);
      setError(`${id}: ${messageOf(err)}`);
      return false;
    } finally {
      setBusy(null);
    }
  };
  const replay = (id: string) => run(id, async () => `Replayed ${id}: ${(await post<{ outcome: string }>(`/api/v1/dead-letters/${seg(id)}/replay`, {})).outcome.replace(/_/g, ' ')}`);
  const discard = (id: string, reason: string) => run(id, async () => (await del(`/api/v1/dead-letters/${seg(id)}`, { reason }), `Discarded ${id}`));

  const columns: Column<DeadLetter>[] = [
    { header: 'Id', cell: (l) => <span class="id">{l.id}</span> },
    { header: 'Queue', cell: (l) => l.queue },
    { header: 'Job', cell: (l) => `${l.name} (${l.jobId})` },
    { header: 'Failed', cell: (l) => `${l.failedReason}: ${l.reason}` },
    { header: 'Attempts', cell: (l) => l.attemptsMade, numeric: true },
    { header: 'Failed at', cell: (l) => <Time iso={l.failedAt} /> },
    { header: 'State', cell: (l) => <span class={`badge state dl-${l.state}`}>{l.state}</span> },
    { header: 'Replays', cell: (l) => l.replayCount, numeric: true },
    { header: 'By', cell: (l) => (l.stateBy ? `${l.stateBy}${l.discardReason ? `: ${l.discardReason}` : ''}` : <span class="muted">—</span>) },
    { header: 'Actions', cell: (l) => (l.state === 'discarded' ? <span class="muted">—</span> : <Actions letter={l} busy={busy === l.id} onReplay={replay} onDiscard={discard} />) },
  ];

  return (
    <>
      <h1 tabIndex={-1}>Dead letters</h1>
      <div class="filters">
        <div class="field">
          <label for="dl-state">State</label>
          <select id="dl-state" value={state} onChange={(e) => setState(e.currentTarget.value)}>
            <option value="">All states</option>
            {STATES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </div>
      </div>
      <StatusText text={status} />
      <ErrorText error={error ?? list.error} />
      {list.data ? <Table label="Dead letters" columns={columns} rows={list.data.items} rowKey={(l) => l.id} empty="No dead letters." /> : !list.error && <p class="muted">Loading…</p>}
      {list.data?.nextCursor && <p class="muted">Showing the newest {LIMIT}; older ones are in the API and the CLI.</p>}
    </>
  );
}

function Actions({ letter, busy, onReplay, onDiscard }: { letter: DeadLetter; busy: boolean; onReplay: (id: string) => Promise<boolean>; onDiscard: (id: string, reason: string) => Promise<boolean> }) {
  const [reason, setReason] = useState('');
  const [missing, setMissing] = useState(false);
  const inputId = `discard-${letter.id}`;
  const submit = async (e: Event) => {
    e.preventDefault();
    const r = reason.trim();
    setMissing(!r);
    if (r && (await onDiscard(letter.id, r))) setReason('');
  };
  return (
    <div class="row-actions">
      <button type="button" class="small" disabled={busy} onClick={() => onReplay(letter.id)}>
        Replay
      </button>
      {/* A discard is final: it asks for the reason the audit records. */}
      <form class="inline" onSubmit={submit}>
        <label for={inputId} class="sr-only">
          Reason for {letter.id}
        </label>
        <input id={inputId} value={reason} maxLength={500} placeholder="reason" onInput={(e) => setReason(e.currentTarget.value)} aria-invalid={missing || undefined} aria-describedby={missing ? `${inputId}-err` : undefined} />
        <button type="submit" class="small danger" disabled={busy}>
          Discard
        </button>
        {missing && (
          <span id={`${inputId}-err`} class="error-inline">
            Give a reason.
          </span>
        )}
      </form>
    </div>
  );
}
