import { Decimal } from '../money/decimal.js';
import { formatUnits } from '../money/units.js';

export interface TradeMetrics {
  trades: number;
  winRate: number | null;
  profitFactor: number | null;
  avgWin: string | null;
  avgLoss: string | null;
  largestWin: string | null;
  largestLoss: string | null;
  tradesPerMonth: number | null;
}

const MONTH_DAYS = 365.25 / 12;

/** From closed trades' realised P&L (decimal money, so averages are exact then rounded to the cent). */
export function tradeMetrics(closed: Array<{ date: string; pnl: Decimal }>): TradeMetrics {
  const wins = closed.filter((t) => t.pnl.isPositive() && !t.pnl.isZero()).map((t) => t.pnl);
  const losses = closed.filter((t) => t.pnl.isNegative()).map((t) => t.pnl);
  const total = (xs: Decimal[]) => xs.reduce((s, x) => s.plus(x), new Decimal(0));
  const avg = (xs: Decimal[]) => (xs.length ? formatUnits('cash', total(xs).dividedBy(xs.length)) : null);
  const dates = closed.map((t) => Date.parse(`${t.date}T00:00:00Z`)).sort((a, b) => a - b);
  const spanDays = dates.length > 1 ? (dates[dates.length - 1]! - dates[0]!) / 86_400_000 : 0;
  return {
    trades: closed.length,
    winRate: wins.length + losses.length > 0 ? wins.length / (wins.length + losses.length) : null,
    profitFactor: losses.length > 0 ? total(wins).dividedBy(total(losses).abs()).toNumber() : null,
    avgWin: avg(wins),
    avgLoss: avg(losses),
    largestWin: wins.length ? formatUnits('cash', Decimal.max(...wins)) : null,
    largestLoss: losses.length ? formatUnits('cash', Decimal.min(...losses)) : null,
    tradesPerMonth: spanDays > 0 ? closed.length / (spanDays / MONTH_DAYS) : null,
  };
}
