import type { Config } from '../../config/schema.js';

/** A day of an account's series as the loss rules see it: value and flow-adjusted return. */
export interface DayPoint {
  date: string;
  value: number;
  dailyReturn: number | null;
}

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

const compound = (points: DayPoint[]) => points.reduce((acc, p) => acc * (1 + (p.dailyReturn ?? 0)), 1) - 1;
const pct = (x: number) => `${(x * 100).toFixed(2)} %`;

/**
 * The loss rules of SPEC §7.4 on the newest point of a series (oldest first): the day's return, the
 * compounded return of its ISO week and of its calendar month so far (flows excluded), and the
 * drawdown from the series' peak. Each breach names its period, so it is raised once per period.
 */
export function lossBreaches(series: DayPoint[], limits: Config['alerts']): Breach[] {
  const last = series[series.length - 1];
  if (!last) return [];
  const breaches: Breach[] = [];
  const daily = last.dailyReturn;
  if (daily !== null && daily < -Number(limits.dailyLossMax)) {
    breaches.push({ rule: 'daily-loss', period: last.date, severity: 'warning', message: `lost ${pct(-daily)} on ${last.date}`, details: { dailyReturn: daily } });
  }
  const week = isoWeek(last.date);
  const weekly = compound(series.filter((p) => isoWeek(p.date) === week));
  if (weekly < -Number(limits.weeklyLossMax)) {
    breaches.push({ rule: 'weekly-loss', period: week, severity: 'warning', message: `lost ${pct(-weekly)} in week ${week}`, details: { weeklyReturn: weekly } });
  }
  const month = last.date.slice(0, 7);
  const monthly = compound(series.filter((p) => p.date.startsWith(month)));
  if (monthly < -Number(limits.monthlyLossMax)) {
    breaches.push({ rule: 'monthly-loss', period: month, severity: 'critical', message: `lost ${pct(-monthly)} in ${month}`, details: { monthlyReturn: monthly } });
  }
  const peak = Math.max(...series.map((p) => p.value));
  const drawdown = peak > 0 ? last.value / peak - 1 : 0;
  if (drawdown < -Number(limits.drawdownMax)) {
    breaches.push({ rule: 'drawdown', period: month, severity: 'critical', message: `${pct(-drawdown)} below its peak`, details: { drawdown } });
  }
  return breaches;
}
