import type { Config } from '../../config/schema.js';
import { type IndexState, indexMeasures } from './value-index.js';

export interface Breach {
  rule: 'daily-loss' | 'weekly-loss' | 'monthly-loss' | 'drawdown';
  /** The period the breach is about: the dedup key with the account and the rule (SPEC §7.4). */
  period: string;
  severity: 'warning' | 'critical';
  message: string;
  details: Record<string, number | string>;
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

const pct = (x: number) => `${(x * 100).toFixed(2)} %`;

/**
 * The loss rules on an account's newest daily point, all read from its flow-adjusted value index
 * (shared/domain/value-index.ts), so deposits, withdrawals, forks and merges never count as losses:
 * the day's return, the return of its ISO week and of its calendar month so far, and the drawdown
 * from the index's high-water mark. Each breach names its period, so it is raised once per period.
 */
export function lossBreaches(point: IndexState & { dailyReturn: number | null }, limits: Config['alerts']): Breach[] {
  const m = indexMeasures(point);
  const breaches: Breach[] = [];
  if (m.dailyReturn !== null && m.dailyReturn < -Number(limits.dailyLossMax)) {
    breaches.push({ rule: 'daily-loss', period: point.date, severity: 'warning', message: `lost ${pct(-m.dailyReturn)} on ${point.date}`, details: { dailyReturn: m.dailyReturn } });
  }
  const week = isoWeek(point.date);
  if (m.weekReturn < -Number(limits.weeklyLossMax)) {
    breaches.push({ rule: 'weekly-loss', period: week, severity: 'warning', message: `lost ${pct(-m.weekReturn)} in week ${week}`, details: { weeklyReturn: m.weekReturn } });
  }
  const month = point.date.slice(0, 7);
  if (m.monthReturn < -Number(limits.monthlyLossMax)) {
    breaches.push({ rule: 'monthly-loss', period: month, severity: 'critical', message: `lost ${pct(-m.monthReturn)} in ${month}`, details: { monthlyReturn: m.monthReturn } });
  }
  if (m.drawdown < -Number(limits.drawdownMax)) {
    breaches.push({ rule: 'drawdown', period: month, severity: 'critical', message: `${pct(-m.drawdown)} below its high-water mark (flows excluded)`, details: { drawdown: m.drawdown } });
  }
  return breaches;
}
