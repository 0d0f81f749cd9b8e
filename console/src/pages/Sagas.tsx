import { useState } from 'preact/hooks';
import { type Principal, atLeast, get, messageOf, post, seg } from '../api';
import { type Column, Table } from '../components/Table';
import { ErrorText, StatusText, Time } from '../components/Values';
import { accountHref, usePoll } from '../hooks';
import { type Fork, type Merge, SAGA_DONE } from '../types';

const POLL_MS = 2000;
const LIMIT = 20;

const AccountLink = ({ id }: { id: string | null }) => (id ? <a href={accountHref(id)}>{id}</a> : <span class="muted">—</span>);
const SagaError = ({ e }: { e: { code: string; message: string } | null }) => (e ? <span title={e.code}>{e.message}</span> : <span class="muted">—</span>);

export function SagasPage({ principal }: { principal: Principal }) {
  const forks = usePoll(() => get<{ inFlight: number; limit: number; recent: Fork[] }>('/api/v1/forking/status', { limit: LIMIT }), [], POLL_MS);
  const merges = usePoll(() => get<{ inFlight: number; recent: Merge[] }>('/api/v1/consolidation/status', { limit: LIMIT }), [], POLL_MS);
  const [status, setStatus] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const canOperate = atLeast(principal, 'operator');

  /** Resume (forward from the journal) or abort (roll back; refused once the destination was credited). */
  const act = async (kind: 'fork' | 'merge', id: string, verb: 'resume' | 'abort') => {
    const base = kind === 'fork' ? '/api/v1/forking' : '/api/v1/consolidation';
    setBusy(id);
    setError(null);
    try {
      const saga = await post<{ state: string }>(`${base}/${seg(id)}/${verb}`, {});
      setStatus(verb === 'resume' ? `Resume requested for ${id} (${saga.state})` : `Aborted ${id} (${saga.state})`);
      await (kind === 'fork' ? forks : merges).reload();
    } catch (err) {
      setStatus(null);
      setError(`${verb === 'resume' ? 'Resume' : 'Abort'} ${id}: ${messageOf(err)}`);
    } finally {
      setBusy(null);
    }
  };

  const actions = (kind: 'fork' | 'merge') => (s: { id: string; state: string }) =>
    canOperate && !SAGA_DONE.includes(s.state) ? (
      <span class="buttons">
        <button type="button" class="small" disabled={busy === s.id} onClick={() => act(kind, s.id, 'resume')}>
          Resume
        </button>
        <button type="button" class="small danger" disabled={busy === s.id} onClick={() => act(kind, s.id, 'abort')}>
          Abort
        </button>
      </span>
    ) : (
      <span class="muted">—</span>
    );

  const forkColumns: Column<Fork>[] = [
    { header: 'Fork', cell: (f) => <span class="id">{f.id}</span> },
    { header: 'Parent', cell: (f) => <AccountLink id={f.parentId} /> },
    { header: 'Child', cell: (f) => <AccountLink id={f.childId} /> },
    { header: 'State', cell: (f) => <span class={`badge state state-${f.state.toLowerCase()}`}>{f.state}</span> },
    { header: 'Mode', cell: (f) => f.mode },
    { header: 'Requested', cell: (f) => <Time iso={f.requestedAt} /> },
    { header: 'Started', cell: (f) => <Time iso={f.startedAt} /> },
    { header: 'Completed', cell: (f) => <Time iso={f.completedAt} /> },
    { header: 'Error', cell: (f) => <SagaError e={f.error} /> },
    ...(canOperate ? [{ header: 'Actions', cell: actions('fork') }] : []),
  ];
  const mergeColumns: Column<Merge>[] = [
    { header: 'Merge', cell: (m) => <span class="id">{m.id}</span> },
    { header: 'Source', cell: (m) => <AccountLink id={m.sourceId} /> },
    { header: 'Target', cell: (m) => <AccountLink id={m.targetId} /> },
    { header: 'Strategy', cell: (m) => m.strategy },
    { header: 'State', cell: (m) => <span class={`badge state state-${m.state.toLowerCase()}`}>{m.state}</span> },
    { header: 'Requested', cell: (m) => <Time iso={m.requestedAt} /> },
    { header: 'Scheduled', cell: (m) => <Time iso={m.scheduledFor} /> },
    { header: 'Started', cell: (m) => <Time iso={m.startedAt} /> },
    { header: 'Completed', cell: (m) => <Time iso={m.completedAt} /> },
    { header: 'Error', cell: (m) => <SagaError e={m.error} /> },
    ...(canOperate ? [{ header: 'Actions', cell: actions('merge') }] : []),
  ];

  return (
    <>
      <h1 tabIndex={-1}>Sagas</h1>
      <p class="muted">The most recent forks and merges, refreshed every 2 seconds.</p>
      <StatusText text={status} />
      <ErrorText error={error} />
      <section aria-labelledby="forks-h">
        <h2 id="forks-h">Forks</h2>
        {forks.data && (
          <p class="muted">
            {forks.data.inFlight} in flight (at most {forks.data.limit} at a time)
          </p>
        )}
        <ErrorText error={forks.error} />
        {forks.data ? <Table label="Forks" columns={forkColumns} rows={forks.data.recent} rowKey={(f) => f.id} empty="No forks yet." /> : !forks.error && <p class="muted">Loading…</p>}
      </section>
      <section aria-labelledby="merges-h">
        <h2 id="merges-h">Merges</h2>
        {merges.data && <p class="muted">{merges.data.inFlight} in flight</p>}
        <ErrorText error={merges.error} />
        {merges.data ? <Table label="Merges" columns={mergeColumns} rows={merges.data.recent} rowKey={(m) => m.id} empty="No merges yet." /> : !merges.error && <p class="muted">Loading…</p>}
      </section>
    </>
  );
}
