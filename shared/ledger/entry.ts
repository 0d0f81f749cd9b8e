import type { StoredEntry } from '../db/journal-repository.js';
import { loadBalances, loadTotals, storeBalances, storeTotals } from '../db/stored-balances.js';
import { loadOperation, storeOperation } from '../db/stored-operation.js';
import { readStoredUnits, storeUnits } from '../db/stored-units.js';
import type { Balances } from '../domain/balances.js';
import type { Operation } from '../domain/ledger.js';
import { type Totals, nextTotals, zeroTotals } from '../domain/totals.js';
import type { Decimal } from '../money/decimal.js';
import { canonicalJson, sha256Hex } from '../runtime/canonical-json.js';

/** The link before an account's first entry. */
export const GENESIS_HASH = '0'.repeat(64);

/** An entry's loaded view: the operation, balances and totals as Decimals. */
export interface LoadedEntry {
  op: Operation;
  after: Balances;
  totals: Totals;
}

export function loadEntry(e: StoredEntry): LoadedEntry {
  return { op: loadOperation(e.kind, e.op), after: loadBalances(e.after), totals: loadTotals(e.totals) };
}

/**
 * The text an entry's hash covers: every field but the hash, each amount passed through its Decimal
 * and back, so a value a server returns as int32 rather than int64 hashes the same as when written.
 */
function hashedText(e: Omit<StoredEntry, 'hash'>): string {
  const op = loadOperation(e.kind, e.op);
  return canonicalJson({
    accountId: e.accountId,
    seq: e.seq,
    kind: e.kind,
    idempotencyKey: e.idempotencyKey,
    payloadHash: e.payloadHash ?? null,
    sagaId: e.sagaId ?? null,
    op: storeOperation(op),
    realisedPnlCents: readStoredUnits(e.realisedPnlCents),
    after: storeBalances(loadBalances(e.after)),
    totals: storeTotals(loadTotals(e.totals)),
    actor: e.actor,
    jobId: e.jobId ?? null,
    day: e.day,
    at: new Date(e.at),
  });
}

/** sha256(previous hash, entry): each entry seals the one before it, so the journal is a hash chain. */
export const entryHash = (e: Omit<StoredEntry, 'hash'>): string => sha256Hex(`${e.prevHash}\n${hashedText(e)}`);

export interface EntryFields {
  accountId: string;
  idempotencyKey: string;
  payloadHash: string | null;
  sagaId: string | null;
  actor: string;
  jobId: string | null;
  day: string;
  at: Date;
}

/**
 * The entry that follows `previous` (null: the account's first): its seq, totals and chain link follow
 * from it, so an entry is complete and sealed before it is written.
 */
export function nextEntry(previous: StoredEntry | null, fields: EntryFields, op: Operation, after: Balances, realisedPnl: Decimal): StoredEntry {
  const totals = nextTotals(previous ? loadTotals(previous.totals) : zeroTotals(), op, realisedPnl);
  const unsealed: Omit<StoredEntry, 'hash'> = {
    ...fields,
    seq: (previous?.seq ?? 0) + 1,
    kind: op.kind,
    op: storeOperation(op),
    realisedPnlCents: storeUnits('cash', realisedPnl),
    after: storeBalances(after),
    totals: storeTotals(totals),
    prevHash: previous?.hash ?? GENESIS_HASH,
  };
  return { ...unsealed, hash: entryHash(unsealed) };
}
