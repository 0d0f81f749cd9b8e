import { useRef, useState } from 'preact/hooks';
import { type Principal, atLeast, get, messageOf, post, seg } from '../api';
import { KeyValues, StatusText, ErrorText, Time, Val } from '../components/Values';
import { accountHref, usePoll } from '../hooks';
import type { Review, ReviewDetail } from '../types';

const POLL_MS = 2000;
const KIND_LABEL: Record<string, string> = { fork: 'Fork', merge: 'Merge', reactivate: 'Reactivation' };
/** Parts of a decision shown in tables of their own; the rest goes in the summary. */
const OWN_TABLES = new Set(['factors', 'weights', 'inputs', 'assessment']);

/** A pending review with what is behind it (null: the details could not be loaded, see `detailError`). */
interface Item {
  review: Review;
  decision: Record<string, unknown> | null;
  detailError: string | null;
}

export function ReviewsPage({ principal }: { principal: Principal }) {
  // Details by review id, with the version they were read at: the decision behind a review changes
  // only when the review is refreshed, so each is read once per version, not on every poll.
  const details = useRef(new Map<string, { version: string; decision: Record<string, unknown> | null }>());
  const load = async (): Promise<Item[]> => {
    const { items } = await get<{ items: Review[] }>('/api/v1/reviews', { state: 'PENDING', limit: 50 });
    const ids = new Set(items.map((r) => r.id));
    for (const id of details.current.keys()) if (!ids.has(id)) details.current.delete(id);
    // A review is shown together with its details, never half drawn.
    return Promise.all(
      items.map(async (review) => {
        const version = `${review.decisionId ?? ''}|${review.refreshedAt ?? ''}`;
        const known = details.current.get(review.id);
        if (known?.version === version) return { review, decision: known.decision, detailError: null };
        try {
          const d = await get<ReviewDetail>(`/api/v1/reviews/${seg(review.id)}`);
          details.current.set(review.id, { version, decision: d.decision ?? null });
          return { review, decision: d.decision ?? null, detailError: null };
        } catch (err) {
          return { review, decision: null, detailError: messageOf(err) }; // tried again on the next poll
        }
      }),
    );
  };
  const list = usePoll(load, [], POLL_MS);
  const [status, setStatus] = useState<string | null>(null);
  const decided = async (text: string) => {
    setStatus(text);
    await list.reload(); // the decided review leaves the PENDING list
  };
  const items = list.data ?? [];
  return (
    <>
      <h1 tabIndex={-1}>Reviews</h1>
      <p class="muted">Proposals waiting for an operator, most urgent first. Refreshed every 2 seconds.</p>
      <StatusText text={status} />
      <ErrorText error={list.error} />
      {list.data === null ? (
        !list.error && <p class="muted">Loading…</p>
      ) : items.length === 0 ? (
        <p>No pending reviews.</p>
      ) : (
        <div class="cards">
          {items.map((it) => (
            <ReviewCard key={it.review.id} item={it} canDecide={atLeast(principal, 'operator')} onDecided={decided} />
          ))}
        </div>
      )}
    </>
  );
}

function ReviewCard({ item, canDecide, onDecided }: { item: Item; canDecide: boolean; onDecided: (status: string) => Promise<void> }) {
  const { review, decision, detailError } = item;
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const decide = async (verb: 'approve' | 'reject') => {
    setBusy(true);
    setError(null);
    try {
      const note = reason.trim();
      await post(`/api/v1/reviews/${seg(review.id)}/${verb}`, note ? { note } : {});
      await onDecided(`${verb === 'approve' ? 'Approved' : 'Rejected'} ${review.id}`);
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  const reasonId = `reason-${review.id}`;
  return (
    <article aria-label={`Review ${review.id}`} class="card">
      <h2>
        {KIND_LABEL[review.kind] ?? review.kind} review <span class="muted id">{review.id}</span>
      </h2>
      <dl class="facts">
        <div>
          <dt>Kind</dt>
          <dd>{review.kind}</dd>
        </div>
        <div>
          <dt>Account</dt>
          <dd>
            <a href={accountHref(review.accountId)}>{review.accountId}</a>
          </dd>
        </div>
        {review.urgency && (
          <div>
            <dt>Urgency</dt>
            <dd>{review.urgency}</dd>
          </div>
        )}
        <div>
          <dt>Opened</dt>
          <dd>
            <Time iso={review.createdAt} />
          </dd>
        </div>
        {review.refreshedAt && (
          <div>
            <dt>Refreshed</dt>
            <dd>
              <Time iso={review.refreshedAt} />
            </dd>
          </div>
        )}
        {review.forkId && (
          <div>
            <dt>Fork</dt>
            <dd>{review.forkId}</dd>
          </div>
        )}
      </dl>

      {detailError ? (
        // Without its details a review can still be decided: a note, not an alarm.
        <p class="note">The decision's details could not be loaded: {detailError}</p>
      ) : decision ? (
        <Decision decision={decision} />
      ) : (
        <p class="muted">No decision details recorded.</p>
      )}

      {canDecide && (
        <form class="decide" onSubmit={(e) => e.preventDefault()}>
          <label for={reasonId}>Reason</label>
          <textarea id={reasonId} rows={2} maxLength={500} value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
          <div class="buttons">
            <button type="button" disabled={busy} onClick={() => decide('approve')}>
              Approve
            </button>
            <button type="button" class="danger" disabled={busy} onClick={() => decide('reject')}>
              Reject
            </button>
          </div>
          <ErrorText error={error} />
        </form>
      )}
    </article>
  );
}

/**
 * The decision or opportunity behind a review, rendered generically: its own fields, then the
 * factor breakdown (a fork decision's market, performance, system load and timing), the inputs
 * and (for a merge) the assessment, each key as the API names it.
 */
function Decision({ decision }: { decision: Record<string, unknown> }) {
  const summary = Object.fromEntries(Object.entries(decision).filter(([k]) => !OWN_TABLES.has(k)));
  const factors = decision['factors'];
  const weights = (decision['weights'] ?? {}) as Record<string, unknown>;
  return (
    <div class="decision">
      <h3>Decision</h3>
      <KeyValues data={summary} label="Decision summary" />
      {isObject(factors) && <Factors factors={factors} weights={weights} />}
      <h3>Inputs</h3>
      <KeyValues data={isObject(decision['inputs']) ? decision['inputs'] : null} label="Inputs" />
      {isObject(decision['assessment']) && (
        <>
          <h3>Assessment</h3>
          <KeyValues data={decision['assessment']} label="Assessment" />
        </>
      )}
    </div>
  );
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function Factors({ factors, weights }: { factors: Record<string, unknown>; weights: Record<string, unknown> }) {
  const names = Object.keys(factors);
  const rows = names.map((n) => (isObject(factors[n]) ? (factors[n] as Record<string, unknown>) : { value: factors[n] }));
  // Every key any factor has, in first-seen order; the decision's weight beside a factor without one.
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const withWeight = !keys.includes('weight') && names.some((n) => n in weights);
  return (
    <>
      <h3>Factors</h3>
      <div class="table-wrap" role="region" aria-label="Factors" tabIndex={0}>
        <table>
          <caption class="sr-only">Factors</caption>
          <thead>
            <tr>
              <th scope="col">Factor</th>
              {withWeight && <th scope="col">weight</th>}
              {keys.map((k) => (
                <th scope="col" key={k}>
                  {k}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {names.map((n, i) => (
              <tr key={n}>
                <th scope="row">{n}</th>
                {withWeight && (
                  <td>
                    <Val v={weights[n]} />
                  </td>
                )}
                {keys.map((k) => (
                  <td key={k}>
                    <Val v={rows[i]![k]} />
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}
