/** Account tiers in growth order (SPEC §3.2): an account forks a child of the next tier. */
export const TIER_NAMES = ['GEN', 'REV', 'COM'] as const;
export type TierName = (typeof TIER_NAMES)[number];
