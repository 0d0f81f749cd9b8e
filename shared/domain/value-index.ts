import type { Decimal } from '../money/decimal.js';

/**
 * An account's flow-adjusted value index, carried from each daily point to the next: 1 on the first
 * day, then × (1 + r) each day, r = (V − CF) / V_prev − 1 with CF the day's external flows
 * (deposits, withdrawals, transfers, fork and merge moves). So a fork that moves 90 % of an account
 * out is not a 90 % loss; only performance moves the index. Its high-water mark, and its values at the
 * end of the previous ISO week and calendar month, make the week's and month's returns and the
 * drawdown readable from one point, without the series.
 */
export interface IndexState {
  date: string;
  index: number;
  peak: number;
  /** The index at the end of the previous ISO week (the week's return is index / weekBase − 1). */
  weekBase: number;
  monthBase: number;
}

export interface DayValues {
  date: string;
  equity: Decimal;
  /** The day's external flow, in minus out. */
  netFlow: Decimal;
}

/** The day's return and the index after it; the first point starts the index at 1. */
export function nextIndex(prev: (IndexState & { equity: Decimal }) | null, day: DayValues): IndexState & { dailyReturn: number | null } {
  if (!prev) return { date: day.date, index: 1, peak: 1, weekBase: 1, monthBase: 1, dailyReturn: null };
  const dailyReturn = prev.equity.isZero() ? null : day.equity.minus(day.netFlow).dividedBy(prev.equity).minus(1).toNumber();
  const index = prev.index * (1 + (dailyReturn ?? 0));
  return {
    date: day.date,
    index,
    peak: Math.max(prev.peak, index),
    weekBase: isoWeek(day.date) === isoWeek(prev.date) ? prev.weekBase : prev.index,
    monthBase: day.date.slice(0, 7) === prev.date.slice(0, 7) ? prev.monthBase : prev.index,
    dailyReturn,
  };
}

/** The measures the loss rules read, from one point. */
export function indexMeasures(s: IndexState & { dailyReturn: number | null }) {
  return {
    dailyReturn: s.dailyReturn,
    weekReturn: s.index / s.weekBase - 1,
    monthReturn: s.index / s.monthBase - 1,
    drawdown: s.peak > 0 ? s.index / s.peak - 1 : 0,
  };
}

/** ISO week of a date, 'YYYY-Www' (weeks start on Monday; week 1 holds the year's first Thursday). */
export function isoWeek(date: string): string {
  const d = new Date(`${date}T00:00:00Z`);
  const day = (d.getUTCDay() + 6) % 7;
  d.setUTCDate(d.getUTCDate() - day + 3);
  const year = d.getUTCFullYear();
  const firstThursday = new Date(Date.UTC(year, 0, 4));
  const week = 1 + Math.round(((d.getTime() - firstThursday.getTime()) / 86_400_000 - 3 + ((firstThursday.getUTCDay() + 6) % 7)) / 7);
  return `${year}-W${String(week).padStart(2, '0')}`;
}
