import { refuse } from '../domain/refusal.js';
import { canonicalJson, sha256Hex } from '../runtime/canonical-json.js';
import { type Outcome, refusedOutcome } from './outcome.js';
import type { LedgerDeps } from './post.js';

export interface OperationRequest {
  /** The account the operation is about: it scopes the client's key and names the audit chain. */
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

/**
 * Runs a client operation exactly once per key (SPEC §3.4): the key is claimed with the payload's
 * hash first; a finished key answers its stored outcome; the same key with another payload is
 * refused; an unfinished claim (a crash mid-way) is finished by the replay, its steps being idempotent.
 * Each finished operation is appended to the account's audit chain.
 */
export async function runOperation(deps: LedgerDeps, req: OperationRequest, perform: (key: string, payloadHash: string) => Promise<Outcome>): Promise<Outcome> {
  const { idempotency } = deps.stores;
  const key = scopedKey(req.accountId, req.key);
  const payloadHash = sha256Hex(canonicalJson({ operation: req.operation, payload: req.payload }));
  const claim = await idempotency.claim<Outcome>(key, payloadHash, deps.clock.now());
  if (claim.payloadHash !== payloadHash) {
    return refusedOutcome(req.operation, refuse('idempotency_key_reused', `idempotency key ${req.key} was already used with a different payload`));
  }
  if (claim.outcome) return claim.outcome;

  return finishOperation(deps, { ...req, key }, await perform(key, payloadHash));
}

/**
 * Records an operation's outcome under its (scoped) key, keeping the first one if another run got
 * there before, and appends it to the account's audit chain. Recovery uses it to close operations
 * whose job died.
 */
export async function finishOperation(
  deps: LedgerDeps,
  op: { accountId: string; key: string; operation: string; actor: string; jobId: string | null },
  outcome: Outcome,
): Promise<Outcome> {
  const { idempotency, audit } = deps.stores;
  const stored = await idempotency.complete(op.key, outcome);
  await audit.append(
    {
      chain: op.accountId,
      ref: `op:${op.key}`,
      actor: op.actor,
      action: op.operation,
      jobId: op.jobId,
      before: stored.status === 'applied' ? { seq: stored.seq - 1 } : null,
      after:
        stored.status === 'applied' && stored.entry
          ? { seq: stored.seq, cash: stored.entry.cash, reservedCash: stored.entry.reservedCash, state: stored.entry.state, ...(stored.transferId ? { transferId: stored.transferId } : {}) }
          : null,
      outcome: stored.status === 'applied' ? 'applied' : `refused:${stored.code}`,
    },
    deps.clock.now(),
  );
  return stored;
}
