import type { Config } from '../../config/schema.js';
import type { AccountConfig } from '../contracts/account-config.js';
import type { AccountState } from './states.js';
import { type IndexState, indexMeasures, isoWeek } from './value-index.js';

/** What a breached limit does: raise an alert only, stop new trades (SAFE), or stop everything but income and charges (SUSPENDED). */
export const LIMIT_ACTIONS = ['alert', 'safe', 'suspend'] as const;
export type LimitAction = (typeof LIMIT_ACTIONS)[number];
export const LIMIT_RULES = ['daily-loss', 'weekly-loss', 'monthly-loss', 'drawdown'] as const;
export type LimitRule = (typeof LIMIT_RULES)[number];

export interface LossLimit {
  /** The loss (or drawdown) allowed, as a fraction: "0.10" is 10 %. */
  max: string;
  action: LimitAction;
}
export type LossLimits = Partial<Record<LimitRule, LossLimit>>;

export interface Breach {
  rule: LimitRule;
  /** The period the breach is about: with the account and the rule, the key it acts and alerts under once. */
  period: string;
  severity: 'warning' | 'critical';
  action: LimitAction;
  message: string;
  details: Record<string, number | string>;
}

/**
 * The limit of each rule for one account, the most specific first: the account's own `limits`, its
 * `drawdownLimit` (which takes the account out of trading: SAFE), the tier's `lossLimits`, and the
 * fleet's alert thresholds (`alerts`, alert only). One limit per rule, so one breach and one alert.
 */
export function effectiveLimits(tier: LossLimits, account: Pick<AccountConfig, 'limits' | 'drawdownLimit'>, alerts: Config['alerts']): Record<LimitRule, LossLimit> {
  const fleet: Record<LimitRule, LossLimit> = {
    'daily-loss': { max: alerts.dailyLossMax, action: 'alert' },
    'weekly-loss': { max: alerts.weeklyLossMax, action: 'alert' },
    'monthly-loss': { max: alerts.monthlyLossMax, action: 'alert' },
    drawdown: { max: alerts.drawdownMax, action: 'alert' },
  };
  const own: LossLimits = { ...(account.drawdownLimit ? { drawdown: { max: account.drawdownLimit, action: 'safe' as const } } : {}), ...(account.limits ?? {}) };
  return Object.fromEntries(LIMIT_RULES.map((r) => [r, own[r] ?? tier[r] ?? fleet[r]])) as Record<LimitRule, LossLimit>;
}

const pct = (x: number) => `${(x * 100).toFixed(2)} %`;
const ACTION_TEXT: Record<LimitAction, string> = { alert: '', safe: '; trading stopped (SAFE)', suspend: '; account suspended' };

/**
 * The limits breached at one point of the account's flow-adjusted value index (a daily snapshot, or
 * today's value after a price load): the day's return, the ISO week's and calendar month's so far,
 * and the drawdown from the index's high-water mark. Deposits, withdrawals, forks and merges move
 * the equity but not the index, so they never breach anything.
 */
export function limitBreaches(point: IndexState & { dailyReturn: number | null }, limits: Record<LimitRule, LossLimit>): Breach[] {
  const m = indexMeasures(point);
  const week = isoWeek(point.date);
  const month = point.date.slice(0, 7);
  const measured: Array<{ rule: LimitRule; loss: number | null; period: string; what: string; detail: string }> = [
    { rule: 'daily-loss', loss: m.dailyReturn === null ? null : -m.dailyReturn, period: point.date, what: `lost ${m.dailyReturn === null ? '' : pct(-m.dailyReturn)} on ${point.date}`, detail: 'dailyReturn' },
    { rule: 'weekly-loss', loss: -m.weekReturn, period: week, what: `lost ${pct(-m.weekReturn)} in week ${week}`, detail: 'weeklyReturn' },
    { rule: 'monthly-loss', loss: -m.monthReturn, period: month, what: `lost ${pct(-m.monthReturn)} in ${month}`, detail: 'monthlyReturn' },
    { rule: 'drawdown', loss: -m.drawdown, period: month, what: `${pct(-m.drawdown)} below its high-water mark (flows excluded)`, detail: 'drawdown' },
  ];
  const breaches: Breach[] = [];
  for (const x of measured) {
    const limit = limits[x.rule];
    if (x.loss === null || !(x.loss > Number(limit.max))) continue;
    const severity = limit.action !== 'alert' || x.rule === 'monthly-loss' || x.rule === 'drawdown' ? 'critical' : 'warning';
    breaches.push({
      rule: x.rule,
      period: x.period,
      severity,
      action: limit.action,
      message: `${x.what}, over its ${x.rule} limit of ${pct(Number(limit.max))}${ACTION_TEXT[limit.action]}`,
      details: { [x.detail]: -x.loss, limit: limit.max, action: limit.action },
    });
  }
  return breaches;
}

/** The state a breach moves the account to, or null when it stays (alert only, or already there or beyond). */
export function breachTarget(state: AccountState, action: LimitAction): 'SAFE' | 'SUSPENDED' | null {
  if (action === 'suspend') return state === 'ACTIVE' || state === 'SAFE' ? 'SUSPENDED' : null;
  if (action === 'safe') return state === 'ACTIVE' ? 'SAFE' : null;
  return null;
}

/** Actions are listed weakest first: alert, safe, suspend. */
export const actionStrength = (a: LimitAction) => LIMIT_ACTIONS.indexOf(a);

/** The breach that matters most: the strongest action, then critical over warning, then drawdown, month, week, day. */
export function strongestBreach(breaches: Breach[]): Breach | null {
  const rank = (b: Breach) => actionStrength(b.action) * 100 + (b.severity === 'critical' ? 10 : 0) + LIMIT_RULES.indexOf(b.rule);
  return breaches.reduce<Breach | null>((m, b) => (!m || rank(b) > rank(m) ? b : m), null);
}
