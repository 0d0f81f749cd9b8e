import pLimit from 'p-limit';
import type { z } from 'zod';
import type { BulkBatchRepository, BulkKind, ItemRefusal, StoredBatch, StoredBatchItem } from '../../shared/db/bulk-batch-repository.js';
import { canonicalJson, sha256Hex } from '../../shared/runtime/canonical-json.js';
import { type Principal, requireAccess } from './auth.js';
import { updateProfile, type ApiDeps } from './context.js';
import { ApiError } from './errors.js';
import { type OperationStatus, operationIdOf } from './operations.js';
import { type AccountLookup, type Plan, planOpenAccount, planStateChange, planTransaction, profilePatch } from './plans.js';
import { bulkAccountItem, bulkTransactionItem, bulkUpdateItem, type TransactionBody } from './schemas.js';

/** The most items one bulk request carries. */
export const BULK_ITEMS_MAX = 1000;
/** Status reads of a batch's items in flight at once (each one or two Redis or MongoDB reads). */
const STATUS_READS_AT_ONCE = 32;
/** How long a waited-for batch waits for the accounts' projections to show it, at most, and how often it looks. */
const PROJECTION_WAIT_MS = 5000;
const PROJECTION_POLL_MS = 25;

/** An NDJSON line that is not JSON: refused as its item, its neighbours still run. */
export class UnreadableItem {
  constructor(readonly problem: string) {}
}

export interface BulkItemView {
  index: number;
  status: 'queued' | 'running' | 'applied' | 'refused';
  /** The account (accounts, accounts-update) or the operation (transactions) the item is about. */
  id?: string;
  accountId?: string;
  operationId?: string;
  error?: { code: string; message: string };
}

export interface BatchView {
  batchId: string;
  kind: BulkKind;
  statusUrl: string;
  createdAt: string;
  done: boolean;
  counts: { total: number; queued: number; running: number; applied: number; refused: number };
  items: BulkItemView[];
}

export type BulkDeps = Pick<ApiDeps, 'stores' | 'clock' | 'operations' | 'config'> & { batches: BulkBatchRepository };

export const batchUrlOf = (batchId: string) => `/api/v1/bulk/${batchId}`;

const SCHEMAS: Record<BulkKind, z.ZodType> = { accounts: bulkAccountItem, transactions: bulkTransactionItem, 'accounts-update': bulkUpdateItem };

/** The batch's id: who sent it, what kind, and its items; the same request sent again is the same batch. */
function batchIdOf(p: Principal, kind: BulkKind, items: unknown[]): string {
  return `bat_${sha256Hex(canonicalJson({ actor: p.id, kind, items: items.map((i) => (i instanceof UnreadableItem ? { unreadable: i.problem } : i)) })).slice(0, 32)}`;
}

function refusalOf(err: unknown): ItemRefusal {
  if (err instanceof ApiError) return { status: err.status, code: err.code, message: err.message };
  throw err;
}

/** Every account an item names, so a batch reads them in one query. */
function accountIdsNamed(items: unknown[]): string[] {
  const ids: string[] = [];
  for (const i of items) {
    if (typeof i !== 'object' || i === null) continue;
    for (const k of ['accountId', 'toAccountId', 'parentId'] as const) {
      const v = (i as Record<string, unknown>)[k];
      if (typeof v === 'string') ids.push(v);
    }
  }
  return ids;
}

/** One item → its plan, or its refusal: validated and authorised exactly as its single request would be. */
async function planItem(p: Principal, kind: BulkKind, raw: unknown, index: number, lookup: AccountLookup): Promise<StoredBatchItem> {
  const none = { index, accountId: null, operationId: null, job: null, profile: null };
  if (raw instanceof UnreadableItem) return { ...none, refused: { status: 400, code: 'validation_failed', message: raw.problem } };
  const parsed = SCHEMAS[kind].safeParse(raw);
  if (!parsed.success) {
    return { ...none, refused: { status: 400, code: 'validation_failed', message: parsed.error.issues.map((i) => `${i.path.join('.') || 'item'}: ${i.message}`).join('; ') } };
  }
  try {
    let plan: Plan | null = null;
    let profile: Record<string, unknown> | null = null;
    let accountId: string;
    if (kind === 'accounts') {
      const b = parsed.data as z.infer<typeof bulkAccountItem>;
      plan = await planOpenAccount(p, b, b.idempotencyKey, lookup);
      accountId = plan.data.accountId;
    } else if (kind === 'transactions') {
      const { accountId: on, ...b } = parsed.data as z.infer<typeof bulkTransactionItem>;
      plan = await planTransaction(p, on, b as TransactionBody, lookup);
      accountId = on;
    } else {
      const b = parsed.data as z.infer<typeof bulkUpdateItem>;
      const account = await lookup(b.accountId);
      requireAccess(p, account, 'operate');
      profile = profilePatch(b) as Record<string, unknown> | null;
      if (b.state !== undefined) plan = planStateChange(p, account, b.state, b.idempotencyKey, b.reason);
      accountId = account._id;
    }
    const operationId = plan ? operationIdOf(plan.data.accountId, plan.data.idempotencyKey) : null;
    return { index, accountId, operationId, job: plan ? { name: plan.name, data: plan.data as Record<string, unknown> } : null, profile, refused: null };
  } catch (err) {
    return { ...none, refused: refusalOf(err) };
  }
}

/**
 * Submits a batch. Each item is planned as its single request would be (a bad item is refused
 * alone), the plan stored once under the batch's id, then every job enqueued with one `addBulk`.
 *
 * - Dies between any two writes: the stored plan is not marked enqueued, so the same request sent
 *   again finds it and runs the rest; the jobs' ids come from the items' keys, so a job already
 *   queued is not queued twice and an operation already applied is answered from its journal entry.
 *   A profile change is a set-if-different under the account's lock, marked done before the jobs
 *   are enqueued: only a crash between the change and that mark makes it again (the same values).
 * - The same batch twice at once: both plan; the first insert wins and both go on from the stored
 *   plan; BullMQ keeps one job per id; the profile change is written (and audited) by one of them.
 * - Someone changes an account in the middle: the plan authorises the caller only; whether the
 *   operation may happen is decided by the worker from the journal, as for a single request.
 * - A replay answers from the stored plan, so an item refused the first time stays refused even if
 *   what refused it (a missing account) changed since: a replayed batch changes nothing.
 */
export async function submitBatch(deps: BulkDeps, p: Principal, kind: BulkKind, items: unknown[]): Promise<StoredBatch> {
  if (items.length === 0 || items.length > BULK_ITEMS_MAX) throw new ApiError(400, 'validation_failed', `a batch holds 1 to ${BULK_ITEMS_MAX} items; this one has ${items.length}`);
  const batchId = batchIdOf(p, kind, items);
  let batch = await deps.batches.get(batchId);
  if (!batch) {
    const accounts = await deps.stores.accounts.getMany(accountIdsNamed(items));
    const lookup: AccountLookup = async (id) => accounts.get(id) ?? null;
    const planned = await Promise.all(items.map((raw, index) => planItem(p, kind, raw, index, lookup)));
    batch = await deps.batches.store({ _id: batchId, kind, actor: p.id, ownerId: p.role === 'admin' ? null : p.ownerId, createdAt: deps.clock.now(), enqueued: false, profilesApplied: false, items: planned });
  }
  if (!batch.enqueued) await enqueueBatch(deps, p, batch);
  return (await deps.batches.get(batchId)) ?? batch;
}

async function enqueueBatch(deps: BulkDeps, p: Principal, batch: StoredBatch): Promise<void> {
  const live = batch.items.filter((i) => !i.refused);
  // Profile changes first, as the single update makes them before its state change; once, marked
  // done before the jobs go out, so a replay after a failed enqueue does not undo an operator's change
  // made since. Each audit record's ref names the batch and item: written once however often.
  const withProfile = batch.profilesApplied ? [] : live.filter((i) => i.profile);
  if (withProfile.length > 0) {
    const accounts = await deps.stores.accounts.getMany(withProfile.map((i) => i.accountId!));
    for (const i of withProfile) {
      const account = accounts.get(i.accountId!);
      if (account) await updateProfile(deps, p, account, i.profile!, `update-profile:${batch._id}:${i.index}`);
    }
    await deps.batches.markProfilesApplied(batch._id);
  }
  const jobs = live.filter((i) => i.job);
  const reused = await deps.operations.submitMany(jobs.map((i) => i.job as Plan));
  const refusals = jobs
    .filter((_, n) => reused[n])
    .map((i) => ({ index: i.index, refused: { status: 409, code: 'idempotency_key_reused', message: `idempotency key ${String(i.job!.data['idempotencyKey'])} was already used with a different payload` } }));
  await deps.batches.markEnqueued(batch._id, refusals);
}

function itemView(kind: BulkKind, i: StoredBatchItem, status: OperationStatus | null, enqueued: boolean): BulkItemView {
  const about = { ...(i.accountId ? { id: kind === 'transactions' ? i.operationId! : i.accountId, accountId: i.accountId } : {}), ...(i.operationId ? { operationId: i.operationId } : {}) };
  if (i.refused) return { index: i.index, status: 'refused', ...about, error: { code: i.refused.code, message: i.refused.message } };
  if (!i.operationId) return { index: i.index, status: enqueued ? 'applied' : 'queued', ...about };
  if (!status) return { index: i.index, status: 'queued', ...about };
  // A job that failed for good is a refusal of its item (its dead letter says more).
  if (status.status === 'failed') return { index: i.index, status: 'refused', ...about, error: { code: 'operation_failed', message: status.error } };
  if (!('outcome' in status)) return { index: i.index, status: status.status, ...about };
  if (status.outcome.status === 'refused') return { index: i.index, status: 'refused', ...about, error: { code: status.outcome.code, message: status.outcome.message } };
  return { index: i.index, status: 'applied', ...about };
}

/** The batch as its status URL answers it: every item's status in order, and the counts. */
export async function batchView(deps: BulkDeps, batch: StoredBatch): Promise<BatchView> {
  return (await batchState(deps, batch)).view;
}

/** The view, and the journal seq each account reached by the batch's applied items. */
async function batchState(deps: BulkDeps, batch: StoredBatch): Promise<{ view: BatchView; reached: Map<string, number> }> {
  const limit = pLimit(STATUS_READS_AT_ONCE);
  const statuses = await Promise.all(batch.items.map((i) => (i.refused || !i.operationId ? null : limit(() => deps.operations.status(i.operationId!)))));
  const items = batch.items.map((i, n) => itemView(batch.kind, i, statuses[n] ?? null, batch.enqueued));
  const counts = { total: items.length, queued: 0, running: 0, applied: 0, refused: 0 };
  for (const i of items) counts[i.status]++;
  const reached = new Map<string, number>();
  for (const s of statuses) {
    if (s && 'outcome' in s && s.outcome.status === 'applied') reached.set(s.outcome.accountId, Math.max(reached.get(s.outcome.accountId) ?? 0, s.outcome.seq));
  }
  const view = { batchId: batch._id, kind: batch.kind, statusUrl: batchUrlOf(batch._id), createdAt: new Date(batch.createdAt).toISOString(), done: counts.queued + counts.running === 0, counts, items };
  return { view, reached };
}

/**
 * `?wait=true`: every job ended (or the wait ran out), and then the accounts as reads show them
 * caught up with what the batch applied. Account projections are written in coalesced batches by
 * the process that posted, so right after the last job an account read could still show the cash
 * before it; the answer waits (bounded) until it would not, so a client reading its accounts next
 * sees its batch.
 */
export async function waitForBatch(deps: BulkDeps, batch: StoredBatch): Promise<BatchView> {
  const ids = batch.items.filter((i) => !i.refused && i.operationId).map((i) => i.operationId!);
  await deps.operations.waitMany(ids, Date.now() + deps.config.api.bulkWaitTimeoutMs);
  const { view, reached } = await batchState(deps, (await deps.batches.get(batch._id)) ?? batch);
  const deadline = Date.now() + PROJECTION_WAIT_MS;
  for (let behind = [...reached.keys()]; behind.length > 0 && Date.now() < deadline; ) {
    const accounts = await deps.stores.accounts.getMany(behind);
    behind = behind.filter((id) => (accounts.get(id)?.headSeq ?? 0) < reached.get(id)!);
    if (behind.length > 0) await new Promise((r) => setTimeout(r, PROJECTION_POLL_MS));
  }
  return view;
}

/** A batch the caller may read: their own owner's (or any, for an admin); another's is not found. */
export async function readableBatch(deps: BulkDeps, p: Principal, batchId: string): Promise<StoredBatch> {
  const batch = await deps.batches.get(batchId);
  if (!batch || (p.role !== 'admin' && (p.ownerId === null || batch.ownerId !== p.ownerId))) throw new ApiError(404, 'not_found', 'no such batch');
  return batch;
}
