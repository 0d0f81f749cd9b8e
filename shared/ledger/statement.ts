import type { StoredEntry } from '../db/journal-repository.js';
import type { SnapshotRepository } from '../db/snapshot-repository.js';
import { loadBalances, loadTotals } from '../db/stored-balances.js';
import { loadUnits } from '../db/stored-units.js';
import { type Balances, emptyBalances } from '../domain/balances.js';
import { type Totals, zeroTotals } from '../domain/totals.js';
import { valuate } from '../domain/valuation.js';
import { Decimal } from '../money/decimal.js';
import { formatUnits } from '../money/units.js';
import { moneyWeighted, timeWeighted } from './performance-report.js';
import type { LedgerStores } from './stores.js';

/** The most entries one statement lists; a longer period is asked for in parts, or exported. */
export const STATEMENT_ENTRIES_MAX = 10_000;

export interface StatementDeps {
  stores: LedgerStores;
  snapshots: SnapshotRepository;
}

export class StatementTooLarge extends Error {}

/** One line of a statement: `amount` is the change of cash the entry made (in +, out −), `cash` the cash after it. */
export interface StatementLine {
  seq: number;
  date: string;
  at: string;
  kind: string;
  amount: string;
  fees: string;
  counterparty: string;
  cash: string;
}

const money = (d: Decimal) => formatUnits('cash', d);
const dayPlus = (day: string, days: number) => new Date(new Date(`${day}T00:00:00Z`).getTime() + days * 86_400_000).toISOString().slice(0, 10);
const dayBefore = (day: string) => dayPlus(day, -1);
const dayAfter = (day: string) => dayPlus(day, 1);

function feesOf(e: StoredEntry): Decimal {
  if (e.kind === 'trade') return loadUnits('cash', e.op.feesCents ?? 0n);
  if (e.kind === 'fee') return loadUnits('cash', e.op.amountCents ?? 0n);
  return new Decimal(0);
}

/**
 * An account's statement for the business dates [from, to]: opening and closing cash and equity,
 * every entry oldest first, the period's deposits, withdrawals, fees, dividends and realised P&L (the
 * differences of the running totals the journal carries, so exact), and its time- and money-weighted
 * returns from the daily points. Equity is valued at the closes of the day before `from` and of `to`.
 */
export async function accountStatement(deps: StatementDeps, accountId: string, from: string, to: string) {
  // The entries around the period: business dates grow with seq, so the period is the seqs between them.
  const [opening, closing, points] = await Promise.all([
    deps.stores.journal.lastBefore(accountId, from),
    deps.stores.journal.lastBefore(accountId, dayAfter(to)),
    deps.snapshots.series(accountId, undefined, to),
  ]);
  const first = (opening?.seq ?? 0) + 1;
  const last = closing?.seq ?? 0;
  if (last - first + 1 > STATEMENT_ENTRIES_MAX) throw new StatementTooLarge(`${last - first + 1} entries from ${from} to ${to}, more than ${STATEMENT_ENTRIES_MAX}: ask for a shorter period, or export the journal`);
  const entries = last >= first ? await deps.stores.journal.seqRange(accountId, first, last) : [];
  const balancesAt = (e: StoredEntry | null): Balances => (e ? loadBalances(e.after) : emptyBalances('ACTIVE'));
  const totalsAt = (e: StoredEntry | null): Totals => (e ? loadTotals(e.totals) : zeroTotals());
  const open = balancesAt(opening);
  const close = balancesAt(closing);
  const equityAt = async (b: Balances, day: string) => valuate(b, b.positions.length > 0 ? await deps.stores.prices.lastCloses(b.positions.map((p) => p.symbol), day) : new Map()).equity;
  const [openEquity, closeEquity] = await Promise.all([equityAt(open, dayBefore(from)), equityAt(close, to)]);

  let cash = open.cash;
  const lines: StatementLine[] = entries.map((e) => {
    const after = loadBalances(e.after).cash;
    const line = { seq: e.seq, date: e.day, at: new Date(e.at).toISOString(), kind: e.kind, amount: money(after.minus(cash)), fees: money(feesOf(e)), counterparty: e.op.counterpartyId ?? '', cash: money(after) };
    cash = after;
    return line;
  });

  const t0 = totalsAt(opening);
  const t1 = totalsAt(closing);
  const moved = (k: keyof Totals) => money(t1[k].minus(t0[k]));
  // The period's points, from the last one before it (the value it starts from).
  const base = points.filter((p) => p.date < from).at(-1);
  const period = [...(base ? [base] : []), ...points.filter((p) => p.date >= from)];
  return {
    accountId,
    from,
    to,
    opening: { cash: money(open.cash), equity: money(openEquity) },
    closing: { cash: money(close.cash), equity: money(closeEquity) },
    totals: { deposits: moved('deposits'), withdrawals: moved('withdrawals'), fees: moved('fees'), dividends: moved('dividends'), realisedPnl: moved('realisedPnl'), transfersIn: moved('transfersIn'), transfersOut: moved('transfersOut') },
    returns: { timeWeighted: timeWeighted(period), moneyWeighted: moneyWeighted(period) },
    entries: lines,
  };
}
