import { Decimal } from '../money/decimal.js';
import type { Balances } from './balances.js';
import type { Operation } from './ledger.js';

/**
 * What has ever moved into, out of and within an account, carried by every journal entry as running
 * sums (the way TigerBeetle keeps debits and credits posted per account): an entry's totals are its
 * predecessor's plus its own. They make conservation checkable on any single entry, and a day's
 * external flow readable from two heads instead of the day's entries.
 */
export interface Totals {
  deposits: Decimal;
  withdrawals: Decimal;
  /** Account fees and trade fees. */
  fees: Decimal;
  dividends: Decimal;
  realisedPnl: Decimal;
  transfersIn: Decimal;
  transfersOut: Decimal;
  /** Cash plus lots at cost moved in and out by forks and merges. */
  movedIn: Decimal;
  movedOut: Decimal;
  /** External flows at value (deposits, withdrawals, transfers, moves at the closes of their plan): not performance. */
  flowIn: Decimal;
  flowOut: Decimal;
}

export const TOTAL_NAMES = ['deposits', 'withdrawals', 'fees', 'dividends', 'realisedPnl', 'transfersIn', 'transfersOut', 'movedIn', 'movedOut', 'flowIn', 'flowOut'] as const satisfies ReadonlyArray<keyof Totals>;

export function zeroTotals(): Totals {
  const zero = new Decimal(0);
  return Object.fromEntries(TOTAL_NAMES.map((k) => [k, zero])) as unknown as Totals;
}

const atCost = (m: { cash: Decimal; positions: Array<{ costBasis: Decimal }> }) => m.positions.reduce((s, p) => s.plus(p.costBasis), m.cash);

/** The totals after one entry: the running sums before it plus what it moved. */
export function nextTotals(t: Totals, op: Operation, realisedPnl: Decimal): Totals {
  const n: Totals = { ...t, realisedPnl: t.realisedPnl.plus(realisedPnl) };
  switch (op.kind) {
    case 'open':
      return { ...n, deposits: n.deposits.plus(op.deposit), flowIn: n.flowIn.plus(op.deposit) };
    case 'deposit':
      return { ...n, deposits: n.deposits.plus(op.amount), flowIn: n.flowIn.plus(op.amount) };
    case 'withdrawal':
      return { ...n, withdrawals: n.withdrawals.plus(op.amount), flowOut: n.flowOut.plus(op.amount) };
    case 'fee':
      return { ...n, fees: n.fees.plus(op.amount) };
    case 'trade':
      return { ...n, fees: n.fees.plus(op.fees) };
    case 'dividend':
      return { ...n, dividends: n.dividends.plus(op.amount) };
    case 'transfer-in':
      return { ...n, transfersIn: n.transfersIn.plus(op.amount), flowIn: n.flowIn.plus(op.amount) };
    case 'transfer-out':
      return { ...n, transfersOut: n.transfersOut.plus(op.amount), flowOut: n.flowOut.plus(op.amount) };
    case 'fork-in':
    case 'merge-in':
      return { ...n, movedIn: n.movedIn.plus(atCost(op)), flowIn: n.flowIn.plus(op.value) };
    case 'fork-out':
    case 'merge-out':
      return { ...n, movedOut: n.movedOut.plus(atCost(op)), flowOut: n.flowOut.plus(op.value) };
    default:
      return n;
  }
}

/** What the account should hold at cost, by its totals: deposits − withdrawals − fees + dividends + P&L ± transfers and moves. */
export const expectedHoldings = (t: Totals): Decimal =>
  t.deposits.minus(t.withdrawals).minus(t.fees).plus(t.dividends).plus(t.realisedPnl).plus(t.transfersIn).minus(t.transfersOut).plus(t.movedIn).minus(t.movedOut);

/** What it does hold at cost: cash plus every position's cost basis. */
export const holdingsAtCost = (b: Balances): Decimal => b.positions.reduce((s, p) => s.plus(p.costBasis), b.cash);

export function addTotals(a: Totals, b: Totals): Totals {
  return Object.fromEntries(TOTAL_NAMES.map((k) => [k, a[k].plus(b[k])])) as unknown as Totals;
}

export function totalsEqual(a: Totals, b: Totals): boolean {
  return TOTAL_NAMES.every((k) => a[k].equals(b[k]));
}
