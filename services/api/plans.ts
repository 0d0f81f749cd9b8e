import type { JobInput, JobName } from '../../shared/contracts/jobs.js';
import type { ProfilePatch, StoredAccount } from '../../shared/db/account-repository.js';
import { sha256Hex } from '../../shared/runtime/canonical-json.js';
import { type Principal, requireAccess, requireRole } from './auth.js';
import { ApiError } from './errors.js';
import type { CreateAccountBody, TransactionBody } from './schemas.js';

type OpsJob = JobName<'account-ops'>;
type StateChangeTarget = JobInput<'account-ops', 'state-change'>['to'];

/** An account operation the caller may submit: the job and its payload, authorised and ready to enqueue. */
export type Plan = { [N in OpsJob]: { name: N; data: JobInput<'account-ops', N> & { accountId: string; idempotencyKey: string } } }[OpsJob];

/** Accounts by id, as the caller's route read them (one read each, or one read for a whole batch). */
export type AccountLookup = (id: string) => Promise<StoredAccount | null>;

/**
 * Opening an account: who may, for which owner, under which id. The single route and the bulk route
 * both plan through here, so one item of a batch is refused exactly as its single request would be.
 */
export async function planOpenAccount(p: Principal, b: CreateAccountBody, key: string, lookup: AccountLookup): Promise<Plan> {
  requireRole(p, 'operator');
  if (p.role !== 'admin' && b.ownerId && b.ownerId !== p.ownerId) throw new ApiError(403, 'forbidden', 'operators create accounts for their own owner only');
  const parent = b.parentId ? await lookup(b.parentId) : null;
  if (b.parentId) requireAccess(p, parent, 'operate');
  // A parent and its descendants share one owner: a child without one takes its parent's.
  const ownerId = p.role === 'admin' ? (b.ownerId ?? parent?.ownerId ?? null) : p.ownerId;
  if (parent && parent.ownerId !== ownerId) throw new ApiError(422, 'owner_mismatch', `the parent ${parent._id} belongs to another owner; a tree has one owner`);
  // The id follows from who asked and their key, so a retried create finds the same account.
  const accountId = `acc_${sha256Hex(`${ownerId ?? ''}/${key}`).slice(0, 20)}`;
  return {
    name: 'open-account',
    data: { accountId, idempotencyKey: key, actor: p.id, tier: b.type, name: b.name, ownerId, parentId: b.parentId ?? null, config: b.config ?? {}, initialDeposit: b.initialDeposit },
  };
}

/** A money movement on one account: the caller's rights on it (and on a transfer's destination), then its job. */
export async function planTransaction(p: Principal, accountId: string, b: TransactionBody, lookup: AccountLookup): Promise<Plan> {
  const source = await lookup(accountId);
  requireAccess(p, source, 'operate');
  // Dividends and fees come from the platform, not from the account's operator.
  if (b.kind === 'dividend' || b.kind === 'fee') requireRole(p, 'admin');
  if (b.kind === 'transfer') {
    const destination = await lookup(b.toAccountId);
    requireAccess(p, destination, 'operate');
    // Money stays with its owner: each side's journal would otherwise name the other owner's account.
    if (destination.ownerId !== source.ownerId) throw new ApiError(422, 'owner_mismatch', 'a transfer moves money between accounts of one owner');
  }
  const base = { accountId, idempotencyKey: b.idempotencyKey, actor: p.id };
  switch (b.kind) {
    case 'deposit':
      return { name: 'deposit', data: { ...base, amount: b.amount } };
    case 'withdrawal':
      return { name: 'withdrawal', data: { ...base, amount: b.amount, close: b.close } };
    case 'transfer':
      return { name: 'transfer', data: { ...base, amount: b.amount, toAccountId: b.toAccountId } };
    case 'trade':
      return { name: 'trade', data: { ...base, side: b.side, symbol: b.symbol, quantity: b.quantity, price: b.price, fees: b.fees ?? '0.00' } };
    case 'dividend':
      return { name: 'dividend', data: { ...base, amount: b.amount, symbol: b.symbol } };
    case 'fee':
      return { name: 'fee', data: { ...base, amount: b.amount, reason: b.reason } };
  }
}

/** A state change an operator asks for (set, suspend, close). */
export function planStateChange(p: Principal, account: StoredAccount, to: StateChangeTarget, key: string, reason: string | undefined): Plan {
  return { name: 'state-change', data: { accountId: account._id, idempotencyKey: key, actor: p.id, to, reason: reason ?? `set by ${p.id}` } };
}

/** The name and configuration part of an update, as a patch (nothing asked: null). */
export function profilePatch(b: { name?: string | undefined; config?: StoredAccount['config'] | undefined }): ProfilePatch | null {
  const patch = { ...(b.name !== undefined ? { name: b.name } : {}), ...(b.config !== undefined ? { config: b.config } : {}) };
  return Object.keys(patch).length > 0 ? patch : null;
}
