/**
 * `npm run cli -- stress`: the API's POST /api/v1/risk/stress on MongoDB (MONGODB_URL), reading only.
 * Accounts by `--accounts a,b` or a subtree by `--root id`; prices moved by a named scenario of
 * config/ (`--scenario crash-2008`), per-symbol shocks (`--shock ACME=-0.25`, repeated), a market
 * shock through each symbol's beta (`--market -0.30`) or a replayed window (`--window 2008-09-15..2009-03-09`).
 */
import type { Connection } from 'mongoose';
import type { Config } from '../config/schema.js';
import { accountId } from '../shared/contracts/fields.js';
import { type StressScenario, scenarioNamed, stressScenario } from '../shared/contracts/stress-scenario.js';
import type { StoredAccount } from '../shared/db/account-repository.js';
import { openConsolidationDeps } from '../shared/ledger/consolidation.js';
import { openLedgerStores } from '../shared/ledger/stores.js';
import { stressTest, stressView } from '../shared/ledger/stress.js';
import { walkSubtree } from '../shared/ledger/subtree.js';
import { type Clock, systemClock } from '../shared/runtime/clock.js';
import type { Logger } from '../shared/runtime/logger.js';

export const STRESS_USAGE = `  npm run cli -- stress (--accounts <id,id,…> | --root <id>) (--scenario <name> | --shock SYMBOL=-0.25 … | --market -0.30 | --window <from>..<to>)`;

export interface StressArgs {
  accounts?: string | undefined;
  root?: string | undefined;
  scenario?: string | undefined;
  shock?: string[] | undefined;
  market?: string | undefined;
  window?: string | undefined;
}

const SUBTREE_DEPTH_MAX = 6;

/** The scenario the flags describe: exactly one of them. */
function scenarioOf(config: Config, args: StressArgs): { name: string | null; scenario: StressScenario } {
  const given = [args.scenario, args.shock?.length ? args.shock : undefined, args.market, args.window].filter((x) => x !== undefined);
  if (given.length !== 1) throw new Error(`give exactly one of --scenario, --shock, --market or --window\n${STRESS_USAGE}`);
  if (args.scenario) {
    const named = scenarioNamed(config.risk.scenarios, args.scenario);
    if (!named) throw new Error(`no scenario named ${args.scenario}; configured: ${Object.keys(config.risk.scenarios).join(', ')}`);
    return { name: args.scenario, scenario: named };
  }
  const [from, to] = args.window?.split('..') ?? [];
  const raw = args.shock?.length
    ? { shocks: Object.fromEntries(args.shock.map((s) => s.split('=', 2))) }
    : args.market !== undefined
      ? { market: args.market }
      : { window: { from, to } };
  const parsed = stressScenario.safeParse(raw);
  if (!parsed.success) throw new Error(`not a scenario: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}\n${STRESS_USAGE}`);
  return { name: null, scenario: parsed.data };
}

/** Answers the exit code; writes the JSON answer to stdout, a refusal to stderr. */
export async function stressCommand(config: Config, _logger: Logger, mongo: Connection, args: StressArgs, clock: Clock = systemClock): Promise<number> {
  let chosen;
  try {
    chosen = scenarioOf(config, args);
    if ((args.accounts === undefined) === (args.root === undefined)) throw new Error(`give exactly one of --accounts or --root\n${STRESS_USAGE}`);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  const stores = await openLedgerStores(mongo);
  const consolidation = await openConsolidationDeps(mongo, stores, config, clock);
  const accounts: StoredAccount[] = [];
  for (const id of args.root ? [args.root] : [...new Set(args.accounts!.split(',').map((x) => x.trim()))]) {
    const account = accountId.safeParse(id.trim()).success ? await stores.accounts.get(id.trim()) : null;
    if (!account) {
      process.stderr.write(`no account ${id}\n`);
      return 1;
    }
    if (args.root) accounts.push(...(await walkSubtree(stores.accounts, account, { depthMax: SUBTREE_DEPTH_MAX, nodesMax: config.risk.stressAccountsMax + 1, keep: () => true })).nodes.map((n) => n.account));
    else accounts.push(account);
  }
  if (accounts.length > config.risk.stressAccountsMax) {
    process.stderr.write(`a stress test revalues at most ${config.risk.stressAccountsMax} accounts (risk.stressAccountsMax)\n`);
    return 1;
  }
  const result = await stressTest({ consolidation, config }, accounts, chosen.scenario);
  process.stdout.write(`${JSON.stringify({ scenario: chosen.name, definition: chosen.scenario, ...stressView(result) })}\n`);
  return 0;
}
