import { Gauge, type Registry } from 'prom-client';
import type { AccountRepository } from '../../shared/db/account-repository.js';
import { ACCOUNT_STATES } from '../../shared/domain/states.js';
import { TIER_NAMES } from '../../shared/domain/tiers.js';

const REFRESH_MS = 30_000;

/** Accounts by tier and state, counted from MongoDB at most every 30 s (a scrape must stay cheap). */
export function createAccountGauge(registry: Registry, accounts: AccountRepository): Gauge<'tier' | 'state'> {
  let counted: Array<{ tier: string; state: string; n: number }> = [];
  let at = 0;
  return new Gauge({
    name: 'fleet_accounts',
    help: 'Accounts by tier and state (from the account projections, refreshed every 30 s)',
    labelNames: ['tier', 'state'] as const,
    registers: [registry],
    async collect() {
      if (Date.now() - at > REFRESH_MS) {
        counted = await Promise.all(
          TIER_NAMES.flatMap((tier) => ACCOUNT_STATES.map(async (state) => ({ tier, state, n: await accounts.model.countDocuments({ tier, state }) }))),
        );
        at = Date.now();
      }
      for (const c of counted) this.set({ tier: c.tier, state: c.state }, c.n);
    },
  });
}
