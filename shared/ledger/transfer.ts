import type { StoredTransfer } from '../db/transfer-repository.js';
import { loadUnits, storeUnits } from '../db/stored-units.js';
import { type Refusal, type RefusalCode, refuse } from '../domain/refusal.js';
import { STATE_ALLOWS } from '../domain/states.js';
import type { Decimal } from '../money/decimal.js';
import { sha256Hex } from '../runtime/canonical-json.js';
import { faultPoint } from '../runtime/faults.js';
import { type Outcome, refusedOutcome } from './outcome.js';
import { AccountNotOpenError, type LedgerDeps, confirmedProblem, peekAccount, postEntry } from './post.js';
import { sagaSteps } from './saga-steps.js';
import { entryView } from './views.js';

/** The transfer id follows from the client's scoped key, so a replay finds the same transfer. */
export const transferIdOf = (scopedKey: string) => `tr_${sha256Hex(scopedKey).slice(0, 24)}`;

const ACCEPTS = STATE_ALLOWS.transferIn as readonly string[];

/**
 * Starts (or resumes) the transfer a client asked for: hold on the source → credit the destination →
 * post, or release. The record is the claim of the client's key (with its payload hash) and what the
 * recovery job finds; the journal decides everything else.
 */
export async function transfer(
  deps: LedgerDeps,
  req: { fromId: string; toId: string; amount: Decimal; scopedKey: string; payloadHash: string; actor: string; jobId: string | null },
): Promise<Outcome> {
  if (req.fromId === req.toId) return refusedOutcome('transfer', refuse('same_account', 'a transfer needs two different accounts'));
  const now = deps.clock.now();
  await deps.hooks?.beforeWrite?.(`transfer-record ${req.scopedKey}`);
  const record = await claimRecord(deps, {
    _id: transferIdOf(req.scopedKey),
    fromId: req.fromId,
    toId: req.toId,
    amountCents: storeUnits('cash', req.amount),
    phase: 'PENDING',
    voidReason: null,
    idempotencyKey: req.scopedKey,
    payloadHash: req.payloadHash,
    actor: req.actor,
    createdAt: now,
    updatedAt: now,
  });
  if (record.payloadHash !== req.payloadHash) {
    return refusedOutcome('transfer', refuse('idempotency_key_reused', 'this idempotency key started a different transfer'));
  }
  return resumeTransfer(deps, record, req.jobId);
}

/** The transfer's record, inserted with others of the moment in one write; a replay finds the stored one. */
async function claimRecord(deps: LedgerDeps, t: StoredTransfer): Promise<StoredTransfer> {
  if ((await deps.stores.transferRecords.append(t)) === 'inserted') return t;
  return (await deps.stores.transfers.get(t._id)) ?? t;
}

/**
 * Drives a transfer to POSTED or VOIDED from whatever the journal holds; used by the job and by
 * recovery, and safe to run twice at once. The credit's key is the point of no return: whichever
 * decision lands under it first (the destination credited, or refused) settles the transfer, so a
 * void can never race a late credit. Before it, every step is one that a refusal undoes.
 */
export async function resumeTransfer(deps: LedgerDeps, t: StoredTransfer, jobId: string | null): Promise<Outcome> {
  const amount = loadUnits('cash', t.amountCents);
  const steps = sagaSteps(deps, t._id, 'transfer', t.actor, jobId);
  // The hold is the client's operation's own entry: keyed by its scoped key with its payload's hash,
  // so the key decides once across every kind of operation (a deposit's key cannot start a transfer).
  const held = await postEntry(deps, {
    accountId: t.fromId,
    entryKey: t.idempotencyKey,
    payloadHash: t.payloadHash,
    sagaId: t._id,
    operation: 'transfer',
    actor: t.actor,
    jobId,
    build: async () => {
      return (await confirmedProblem((fresh) => destinationProblem(deps, t.toId, fresh))) ?? { kind: 'hold', amount, transferId: t._id };
    },
  });
  if (held.status === 'refused') return settle(deps, t, 'VOIDED', held.refusal);
  faultPoint('transfer.after-hold');

  const credited = await steps.post(t.toId, 'credit', () => ({ kind: 'transfer-in', amount, transferId: t._id, counterpartyId: t.fromId }));
  if (credited.status === 'refused') {
    await steps.must(t.fromId, 'release', () => ({ kind: 'release', amount, transferId: t._id }));
    return settle(deps, t, 'VOIDED', credited.refusal);
  }
  faultPoint('transfer.after-credit');
  // The destination has the money: the transfer can only complete.
  const posted = await steps.must(t.fromId, 'post', () => ({ kind: 'transfer-out', amount, transferId: t._id, counterpartyId: t.toId }));
  await settle(deps, t, 'POSTED', null);
  return { status: 'applied', operation: 'transfer', accountId: t.fromId, seq: posted.seq, entry: entryView(posted), transferId: t._id };
}

/**
 * Why the destination cannot take the transfer, read from this process's cache or (`fresh`) from the
 * database: a refusal is recorded for good, so it is confirmed on a fresh read first. A destination
 * whose document exists but whose 'open' entry has not landed yet makes the transfer wait.
 */
async function destinationProblem(deps: LedgerDeps, toId: string, fresh: boolean): Promise<Refusal | null> {
  const destination = await peekAccount(deps, toId, { fresh });
  if (!destination) return refuse('account_not_found', `no account ${toId}`);
  if (!destination.head) throw new AccountNotOpenError(`account ${toId} is not open yet; the transfer waits for it`);
  if (!ACCEPTS.includes(destination.head.state) || destination.head.owner) return refuse('invalid_state', `destination ${toId} is ${destination.head.state}`);
  return null;
}

/** Records the end the journal decided (a cache for listings and recovery; two runs write the same). */
async function settle(deps: LedgerDeps, t: StoredTransfer, to: 'POSTED' | 'VOIDED', reason: Refusal | null): Promise<Outcome> {
  if (t.phase !== to) {
    await deps.hooks?.beforeWrite?.(`transfer-settle ${t._id}`);
    await deps.stores.transfers.advance(t._id, t.phase, to, deps.clock.now(), reason ? { code: reason.code, message: reason.message } : undefined);
  }
  return reason ? refusedOutcome('transfer', refuse(reason.code as RefusalCode, reason.message)) : { status: 'applied', operation: 'transfer', accountId: t.fromId, seq: 0, entry: null, transferId: t._id };
}
