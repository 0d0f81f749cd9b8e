import { type StoredTransfer, type TransferPhase } from '../db/transfer-repository.js';
import { loadUnits, storeUnits } from '../db/stored-units.js';
import { refuse, type Refusal } from '../domain/refusal.js';
import { STATE_ALLOWS } from '../domain/states.js';
import type { Decimal } from '../money/decimal.js';
import { sha256Hex } from '../runtime/canonical-json.js';
import { faultPoint } from '../runtime/faults.js';
import { type Outcome, refusedOutcome } from './outcome.js';
import { type LedgerDeps, sagaPoster } from './post.js';
import { entryView } from './views.js';

/** The transfer id follows from the client's scoped key, so a replay finds the same transfer. */
export const transferIdOf = (scopedKey: string) => `tr_${sha256Hex(scopedKey).slice(0, 24)}`;

const STEPS_MAX = 6;

/**
 * Starts (or resumes) the transfer a client asked for: hold on the source → credit the
 * destination → post, or void. The record's phase says how far it got; every step is an entry
 * with a key derived from the transfer, so repeating a step after a crash finds it done.
 */
export async function transfer(
  deps: LedgerDeps,
  req: { fromId: string; toId: string; amount: Decimal; scopedKey: string; payloadHash: string; actor: string; jobId: string | null },
): Promise<Outcome> {
  if (req.fromId === req.toId) return refusedOutcome('transfer', refuse('same_account', 'a transfer needs two different accounts'));
  const now = deps.clock.now();
  const record = await deps.stores.transfers.getOrCreate({
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

/** Drives a transfer from whatever phase it is in to POSTED or VOIDED; used by the job and by recovery. */
export async function resumeTransfer(deps: LedgerDeps, start: StoredTransfer, jobId: string | null): Promise<Outcome> {
  const { transfers } = deps.stores;
  let t = start;
  const amount = loadUnits('cash', t.amountCents);
  const step = async (to: TransferPhase, voidReason?: Refusal) => {
    await transfers.advance(t._id, t.phase, to, deps.clock.now(), voidReason ? { code: voidReason.code, message: voidReason.message } : undefined);
    t = { ...t, phase: to, voidReason: voidReason ? { code: voidReason.code, message: voidReason.message } : t.voidReason };
  };
  const post = sagaPoster(deps, t._id, t.actor, jobId, false);

  for (let i = 0; i < STEPS_MAX; i++) {
    switch (t.phase) {
      case 'PENDING': {
        const destinationAccount = await deps.stores.accounts.get(t.toId);
        const destination = destinationAccount ? await deps.stores.journal.head(t.toId, destinationAccount.headSeq) : null;
        const accepts = destination && (STATE_ALLOWS.transferIn as readonly string[]).includes(destination.after.state);
        if (!accepts) {
          await voidTransfer(deps, t, amount, jobId);
          await step('VOIDED', destination ? refuse('invalid_state', `destination ${t.toId} is ${destination.after.state}`) : refuse('account_not_found', `no account ${t.toId}`));
          break;
        }
        const held = await post(t.fromId, 'hold', () => ({ kind: 'hold', amount, transferId: t._id }));
        if (held.status === 'refused') await step('VOIDED', held.refusal);
        else {
          faultPoint('transfer.after-hold');
          await step('HELD');
        }
        break;
      }
      case 'HELD': {
        const credited = await post(t.toId, 'credit', () => ({ kind: 'transfer-in', amount, transferId: t._id, counterpartyId: t.fromId }));
        if (credited.status === 'refused') {
          await voidTransfer(deps, t, amount, jobId);
          await step('VOIDED', credited.refusal);
        } else {
          faultPoint('transfer.after-credit');
          await step('CREDITED');
        }
        break;
      }
      case 'CREDITED': {
        // Once the destination has the money, the transfer can only complete.
        await post(t.fromId, 'post', () => ({ kind: 'transfer-out', amount, transferId: t._id, counterpartyId: t.toId }), true);
        await step('POSTED');
        break;
      }
      case 'POSTED': {
        const posted = await deps.stores.journal.byKey(`${t._id}:post`);
        return { status: 'applied', operation: 'transfer', accountId: t.fromId, seq: posted?.seq ?? 0, entry: posted ? entryView(posted) : null, transferId: t._id };
      }
      case 'VOIDED':
        return refusedOutcome('transfer', refuse((t.voidReason?.code ?? 'insufficient_funds') as Refusal['code'], t.voidReason?.message ?? 'transfer voided'));
    }
  }
  throw new Error(`transfer ${t._id} did not settle within ${STEPS_MAX} steps (phase ${t.phase})`);
}

/** Gives back a hold if one was placed (a crash may have left one behind a PENDING phase). */
async function voidTransfer(deps: LedgerDeps, t: StoredTransfer, amount: Decimal, jobId: string | null): Promise<void> {
  const hold = await deps.stores.journal.byKey(`${t._id}:hold`);
  if (!hold) return;
  await sagaPoster(deps, t._id, t.actor, jobId)(t.fromId, 'release', () => ({ kind: 'release', amount, transferId: t._id }));
}
