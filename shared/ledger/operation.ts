import { type RefusalCode, refuse } from '../domain/refusal.js';
import { canonicalJson, sha256Hex } from '../runtime/canonical-json.js';
import { type Outcome, refusedOutcome } from './outcome.js';
import { type LedgerDeps, type PostRequest, type PostResult, postEntry } from './post.js';
import type { LedgerStores } from './stores.js';
import { transferIdOf } from './transfer.js';
import { entryView } from './views.js';

export interface OperationRequest {
  /** The account the operation is about: it scopes the client's key. */
  accountId: string;
  /** The client's idempotency key (unscoped). */
  key: string;
  operation: string;
  /** Everything that defines the operation: a reuse of the key with other data is refused. */
  payload: unknown;
  actor: string;
  jobId: string | null;
}

/** Keys are per account, so two clients' keys never collide across accounts. */
export const scopedKey = (accountId: string, key: string) => `${accountId}/${key}`;

/** What defines an operation, hashed: the same key with another payload is refused from the entry itself. */
export const payloadHashOf = (operation: string, payload: unknown) => sha256Hex(canonicalJson({ operation, payload }));

/** The answer a client gets for a posting's result. */
export function outcomeOf(operation: string, accountId: string, r: PostResult): Outcome {
  return r.status === 'applied'
    ? { status: 'applied', operation, accountId, seq: r.entry.seq, entry: entryView(r.entry) }
    : refusedOutcome(operation, r.refusal);
}

/**
 * A client operation that is one journal entry: the entry carries the scoped key and the payload's
 * hash, so it is the operation's claim, its outcome and its audit record in one write. A replay finds
 * the entry and answers it; the same key with another payload is refused; a refusal is recorded too,
 * so a retry never flips the answer.
 */
export async function runSingleEntry(deps: LedgerDeps, req: OperationRequest, build: PostRequest['build'], opts: Pick<PostRequest, 'waitWhileLocked' | 'mustApply'> = {}): Promise<Outcome> {
  const r = await postEntry(deps, {
    ...opts,
    accountId: req.accountId,
    entryKey: scopedKey(req.accountId, req.key),
    payloadHash: payloadHashOf(req.operation, req.payload),
    operation: req.operation,
    actor: req.actor,
    jobId: req.jobId,
    build,
  });
  return outcomeOf(req.operation, req.accountId, r);
}

/**
 * A client operation's outcome read back from the journal, for when its job is gone: the entry under
 * its key (the answer, applied or refused), or its transfer's end. Null when nothing was decided yet.
 */
export async function storedOutcome(stores: LedgerStores, accountId: string, key: string): Promise<Outcome | 'running' | null> {
  const scoped = scopedKey(accountId, key);
  const entry = await stores.journal.byKey(scoped);
  const transferId = transferIdOf(scoped);
  if (entry?.kind === 'refusal') return refusedOutcome(entry.op.operation ?? 'operation', refuse(entry.op.code ?? 'invalid_state', entry.op.reason ?? 'refused'));
  if (entry && entry.sagaId !== transferId) return { status: 'applied', operation: entry.kind === 'open' ? 'open-account' : entry.kind, accountId, seq: entry.seq, entry: entryView(entry) };
  // A transfer: its hold is the entry under the key; how it ended is in its own steps' entries.
  const t = await stores.transfers.get(transferId);
  if (!entry && !t) return null;
  const posted = await stores.journal.byKey(`${transferId}:post`);
  if (posted) return { status: 'applied', operation: 'transfer', accountId, seq: posted.seq, entry: entryView(posted), transferId };
  const credit = await stores.journal.byKey(`${transferId}:credit`);
  if (credit?.kind === 'refusal' && (await stores.journal.byKey(`${transferId}:release`))) return refusedOutcome('transfer', refuse(credit.op.code ?? 'invalid_state', credit.op.reason ?? 'refused'));
  if (t?.phase === 'VOIDED') return refusedOutcome('transfer', refuse((t.voidReason?.code ?? 'insufficient_funds') as RefusalCode, t.voidReason?.message ?? 'transfer voided'));
  return 'running';
}
