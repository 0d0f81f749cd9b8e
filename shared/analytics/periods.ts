import type { Point } from './metrics.js';

export const PERIODS = ['day', 'week', 'month', 'quarter', 'year', 'inception'] as const;
export type Period = (typeof PERIODS)[number];

function minus(date: string, period: Exclude<Period, 'day' | 'inception'>): string {
  const d = new Date(`${date}T00:00:00Z`);
  if (period === 'week') d.setUTCDate(d.getUTCDate() - 7);
  else d.setUTCMonth(d.getUTCMonth() - (period === 'month' ? 1 : period === 'quarter' ? 3 : 12));
  return d.toISOString().slice(0, 10);
}

/**
 * The points a period's figures are computed on: the last value on or before the period's start (the
 * base every return of the period grows from) and every value after it. 'day' is the last two points.
 */
export function periodWindow(values: Point[], period: Period): Point[] {
  if (values.length === 0 || period === 'inception') return values;
  if (period === 'day') return values.slice(-2);
  const start = minus(values[values.length - 1]!.date, period);
  let base = 0;
  for (let i = 0; i < values.length; i++) if (values[i]!.date <= start) base = i;
  return values.slice(base);
}
