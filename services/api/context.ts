import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../../config/schema.js';
import { loadBalances } from '../../shared/db/stored-balances.js';
import type { Balances } from '../../shared/domain/balances.js';
import type { LedgerStores } from '../../shared/ledger/stores.js';
import type { ProfilePatch, StoredAccount } from '../../shared/db/account-repository.js';
import type { Outcome } from '../../shared/ledger/outcome.js';
import { accountView } from '../../shared/ledger/views.js';
import { atJournalHead } from '../../shared/ledger/journal-head.js';
import type { Clock } from '../../shared/runtime/clock.js';
import type { Principal } from './auth.js';
import { ApiError } from './errors.js';
import type { Operations, Submitted } from './operations.js';
import type { AssessDeps } from '../../shared/ledger/fork-assessment.js';
import type { Producer } from '../../shared/queue/producer.js';
import type { SnapshotRepository } from '../../shared/db/snapshot-repository.js';
import type { AlertRepository } from '../../shared/db/alert-repository.js';
import type { ConsolidationDeps } from '../../shared/ledger/consolidation.js';
import type { KeyDeps } from '../../shared/auth/key-lifecycle.js';
import type { BulkBatchRepository } from '../../shared/db/bulk-batch-repository.js';
import type { DeadLetterActionDeps } from '../../shared/ledger/dead-letter-actions.js';

export interface ApiDeps {
  stores: LedgerStores;
  operations: Operations;
  clock: Clock;
  config: Pick<Config, 'api' | 'tiers' | 'fork' | 'schedules' | 'consolidation' | 'queuePrefix' | 'redisClusterNodes' | 'apiSessionSecret' | 'risk' | 'alerts'>;
  producer: Producer;
  /** Forks, decisions and reviews (shared with the threshold monitor's assessment). */
  forking: AssessDeps;
  performance: { snapshots: SnapshotRepository; alerts: AlertRepository };
  /** Merges, opportunities and their assessment (shared with the consolidation scanner). */
  consolidation: ConsolidationDeps;
  /** API keys: their store, security events, and how a change reaches every replica's cache. */
  keyAdmin: KeyDeps & { forget: (keyId: string) => void };
  /** Batches of the bulk endpoints. */
  batches: BulkBatchRepository;
  /** Dead letters, and what replaying or discarding one needs. */
  deadLetters: DeadLetterActionDeps;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

/** Accounts of one owner a fleet-wide view is narrowed to (forks, merges, alerts); beyond it, the oldest first. */
const OWNER_ACCOUNTS_MAX = 10_000;

/**
 * The ids of the caller's accounts, for narrowing a fleet-wide record (a fork, a merge, an alert) to
 * what the caller may read; undefined for admins, who read everything.
 */
export async function ownedAccountIds(deps: Pick<ApiDeps, 'stores'>, p: Principal): Promise<string[] | undefined> {
  if (p.role === 'admin') return undefined;
  if (!p.ownerId) return [];
  return deps.stores.accounts.ids({ ownerId: p.ownerId }, { limit: OWNER_ACCOUNTS_MAX });
}

export function principalOf(req: FastifyRequest): Principal {
  if (!req.principal) throw new ApiError(401, 'unauthenticated', 'send Authorization: Bearer <api key>');
  return req.principal;
}

/** A key the client did not give: the operation then runs once, but a retry cannot be recognised. */
export const generatedKey = () => randomUUID();

/** Sends 202 with the status URL, throws the outcome's refusal as its 4xx, or lets `onApplied` send the success. */
export async function answer(
  reply: FastifyReply,
  submitted: Submitted,
  accountId: string,
  onApplied: (outcome: Extract<Outcome, { status: 'applied' }>) => Promise<unknown>,
): Promise<void> {
  if (!submitted.done) {
    await reply.status(202).send({ operationId: submitted.operationId, status: submitted.status, statusUrl: submitted.statusUrl, accountId });
    return;
  }
  const { outcome } = submitted;
  if (outcome.status === 'refused') throw new ApiError(outcome.httpStatus, outcome.code, outcome.message, { operationId: submitted.operationId });
  await onApplied(outcome);
}

/**
 * The account as the API shows it: its projection of the journal head (kept current by every posting,
 * repaired by the reconciler), valued at the last closes. One read instead of walking the journal;
 * the journal head still authorises every debit.
 */
export async function loadAccountView(deps: ApiDeps, id: string) {
  const account = await deps.stores.accounts.get(id);
  return account ? { account, view: await viewOf(deps, account) } : null;
}

/**
 * The account as a write's answer shows it: from its journal head, not its projection. The
 * projection is written in coalesced batches by the process that posted, so right after a write
 * it may not hold the entry the answer is about yet.
 */
export async function loadAccountViewAfterWrite(deps: ApiDeps, id: string) {
  const account = await deps.stores.accounts.get(id);
  return account ? viewOf(deps, await atJournalHead(deps.stores, account)) : null;
}

/** The view of an account document already read (a list page), valued at the last closes. */
export async function viewOf(deps: ApiDeps, account: StoredAccount, head?: { balances: Balances; seq: number }) {
  const balances = head?.balances ?? loadBalances(account.head);
  const prices = balances.positions.length > 0 ? await deps.stores.prices.lastCloses(balances.positions.map((p) => p.symbol), deps.clock.today()) : new Map();
  return accountView(account, balances, head?.seq ?? account.headSeq, prices);
}

/**
 * Records an operator's action in the audit chain of the account it concerns (actions that are not
 * journal entries: saga resume and abort, review decisions, execute requests, profile changes).
 */
export async function auditAction(
  deps: Pick<ApiDeps, 'stores' | 'clock'>,
  a: { chain: string; actor: string; action: string; before: Record<string, unknown> | null; after: Record<string, unknown> | null; outcome: string; ref?: string },
): Promise<void> {
  // A given ref makes the record once however often it is written (the audit's unique ref).
  await deps.stores.audit.append({ ...a, ref: a.ref ?? `${a.action}:${randomUUID()}`, jobId: null }, deps.clock.now());
}

/** A name or configuration change, applied when it changes something, and audited in the account's chain. */
export async function updateProfile(deps: Pick<ApiDeps, 'stores' | 'clock'>, p: Principal, account: StoredAccount, patch: ProfilePatch, ref?: string): Promise<boolean> {
  const before = await deps.stores.accounts.updateProfile(account._id, patch, deps.clock.now());
  if (!before) return false;
  // Written after the change: a process that dies in between leaves a change without its record,
  // never a record of a change that was not made.
  await auditAction(deps, { chain: account._id, actor: p.id, action: 'update-profile', before: { ...before }, after: { ...patch }, outcome: 'applied', ...(ref ? { ref } : {}) });
  return true;
}

const WAIT_POLL_MS = 100;

/** `?wait=true` on a saga: its record read until it ends or the wait runs out (bounded by the API's wait timeout). */
export async function waitForEnd<T extends { phase: string }>(deps: Pick<ApiDeps, 'config'>, read: () => Promise<T[]>, done: readonly string[]): Promise<T[]> {
  const deadline = Date.now() + deps.config.api.waitTimeoutMs;
  let current = await read();
  while (Date.now() < deadline && !current.every((s) => done.includes(s.phase))) {
    await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
    current = await read();
  }
  return current;
}
