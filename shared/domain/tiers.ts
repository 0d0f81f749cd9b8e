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
  return {
    tier,
    minCapital: new Decimal(t.minCapital),
    forkThreshold: t.forkThreshold === null ? null : new Decimal(t.forkThreshold),
    maxPositions: Math.min(t.maxPositions, overrides.maxPositions ?? t.maxPositions),
    maxCapitalPerPosition: overrides.maxCapitalPerPosition ? Decimal.min(tierCap, overrides.maxCapitalPerPosition) : tierCap,
    riskMultiplier: new Decimal(t.riskMultiplier),
    monitoringFrequencySec: t.monitoringFrequencySec,
    nextTier: t.nextTier,
  };
}
