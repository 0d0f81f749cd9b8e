import type { Config } from '../../config/schema.js';
import { Decimal } from '../money/decimal.js';

/** Account tiers in growth order (SPEC §3.2): an account forks a child of the next tier. */
export const TIER_NAMES = ['GEN', 'REV', 'COM'] as const;
export type TierName = (typeof TIER_NAMES)[number];

/** A tier's rules as Decimals, ready for the ledger and fork rules. */
export interface TierRules {
  tier: TierName;
  minCapital: Decimal;
  forkThreshold: Decimal | null;
  /** Equity at which the account may fork: threshold × (1 + fork margin) + min capital; null if it never forks. */
  forkLine: Decimal | null;
  maxPositions: number;
  maxCapitalPerPosition: Decimal;
  riskMultiplier: Decimal;
  monitoringFrequencySec: number;
  nextTier: TierName | null;
}

/** Per-account overrides; they may only tighten the tier's limits (a child of a strict parent stays strict). */
export interface LimitOverrides {
  maxPositions?: number | undefined;
  maxCapitalPerPosition?: string | undefined;
}

export function tierRules(config: Pick<Config, 'tiers'>, tier: TierName, overrides: LimitOverrides = {}): TierRules {
  const t = config.tiers[tier];
  const tierCap = new Decimal(t.maxCapitalPerPosition);
  const minCapital = new Decimal(t.minCapital);
  const forkThreshold = t.forkThreshold === null ? null : new Decimal(t.forkThreshold);
  return {
    tier,
    minCapital,
    forkThreshold,
    forkLine: forkThreshold === null ? null : forkThreshold.times(new Decimal(1).plus(t.forkMargin)).plus(minCapital),
    maxPositions: Math.min(t.maxPositions, overrides.maxPositions ?? t.maxPositions),
    maxCapitalPerPosition: overrides.maxCapitalPerPosition ? Decimal.min(tierCap, overrides.maxCapitalPerPosition) : tierCap,
    riskMultiplier: new Decimal(t.riskMultiplier),
    monitoringFrequencySec: t.monitoringFrequencySec,
    nextTier: t.nextTier,
  };
}

/** Equity at or over the account's fork line (what the `forkCandidate` projection flag records). */
export const atForkLine = (rules: TierRules, equity: Decimal): boolean => rules.forkLine !== null && equity.gte(rules.forkLine);
