import { FORK_IN_FLIGHT } from '../db/fork-repository.js';
import { MERGE_IN_FLIGHT } from '../db/merge-repository.js';
import { loadBalances } from '../db/stored-balances.js';
import { loadOperation } from '../db/stored-operation.js';
import { loadUnits } from '../db/stored-units.js';
import { type Balances, balancesEqual, emptyBalances } from '../domain/balances.js';
import { applyEffects } from '../domain/ledger.js';
import { Decimal } from '../money/decimal.js';
import type { ChainBreak } from '../db/audit-repository.js';
import type { LedgerStores } from './stores.js';

/** Running sums of what moves money into, out of and within accounts (SPEC §3.4 conservation). */
export interface Flows {
  deposits: Decimal;
  withdrawals: Decimal;
  fees: Decimal;
  dividends: Decimal;
  realisedPnl: Decimal;
  transfersIn: Decimal;
  transfersOut: Decimal;
  /** Cash plus positions at cost moved by forks and merges between accounts. */
  movedIn: Decimal;
  movedOut: Decimal;
}
const zeroFlows = (): Flows => ({
  deposits: new Decimal(0),
  withdrawals: new Decimal(0),
  fees: new Decimal(0),
  dividends: new Decimal(0),
  realisedPnl: new Decimal(0),
  transfersIn: new Decimal(0),
  transfersOut: new Decimal(0),
  movedIn: new Decimal(0),
  movedOut: new Decimal(0),
});

export interface VerifyReport {
  ok: boolean;
  accounts: number;
  entries: number;
  /** Accounts whose projection differs from their journal head (repaired when asked). */
  driftAccounts: number;
  /** Broken ledger invariants: gaps, entries that do not follow, conservation, transfers left held. */
  violations: number;
  openTransfers: number;
  audit: { records: number; chains: number; breaks: ChainBreak[] };
  problems: string[];
  totals: Record<keyof Flows | 'cash' | 'costBasis', string>;
}

const ACCOUNT_PAGE = 200;
const ENTRY_PAGE = 1000;
const PROBLEMS_KEPT_MAX = 50;

/**
 * Recomputes every balance from the journals and checks every invariant: each journal gap-free from
 * an 'open' entry, each entry's balances following from the one before, cash + positions at cost equal
 * to the account's flows (and for the whole fleet), no transfer left held when `idle`, projections
 * equal to heads, and the audit chain intact.
 */
export async function verifyLedger(stores: LedgerStores, opts: { idle: boolean; repairProjections?: boolean; now?: Date }): Promise<VerifyReport> {
  const problems: string[] = [];
  const problem = (p: string) => void (problems.length < PROBLEMS_KEPT_MAX && problems.push(p));
  const fleet = zeroFlows();
  let cash = new Decimal(0);
  let costBasis = new Decimal(0);
  let accounts = 0;
  let entries = 0;
  let driftAccounts = 0;
  let violations = 0;

  let afterId: string | undefined;
  for (;;) {
    const page = await stores.accounts.list({}, { afterId, limit: ACCOUNT_PAGE });
    if (page.length === 0) break;
    afterId = page[page.length - 1]!._id;
    for (const account of page) {
      accounts++;
      const r = await verifyJournal(stores, account._id);
      entries += r.entries;
      violations += r.violations.length;
      r.violations.forEach(problem);
      for (const k of Object.keys(fleet) as Array<keyof Flows>) fleet[k] = fleet[k].plus(r.flows[k]);
      if (r.head) {
        cash = cash.plus(r.head.cash);
        costBasis = costBasis.plus(r.head.positions.reduce((s, p) => s.plus(p.costBasis), new Decimal(0)));
      }
      const stale = r.headSeq !== account.headSeq || (r.head !== null && !balancesEqual(r.head, loadBalances(account.head)));
      if (stale && r.head && r.headEntry) {
        driftAccounts++;
        problem(`account ${account._id}: projection at seq ${account.headSeq}, journal head at ${r.headSeq}`);
        if (opts.repairProjections) await stores.accounts.project(account._id, r.headSeq, r.headEntry.after, account.equityCents, opts.now ?? new Date());
      }
    }
  }

  const held = fleet.transfersOut.minus(fleet.transfersIn).plus(fleet.movedOut.minus(fleet.movedIn));
  if (!cash.plus(costBasis).equals(expectedHoldings(fleet))) {
    violations++;
    problem(`fleet: cash + positions at cost ${cash.plus(costBasis).toFixed(2)} differ from flows ${expectedHoldings(fleet).toFixed(2)}`);
  }
  const openTransfers = await stores.transfers.countOpen();
  if (opts.idle && (openTransfers > 0 || !held.isZero())) {
    violations++;
    problem(`fleet: ${openTransfers} transfers not settled; transfers in and out differ by ${held.toFixed(2)}`);
  }
  // Idle, every fork and merge has ended: COMPLETED or ROLLED_BACK (or REJECTED before it began).
  const db = stores.accounts.model.db;
  const sagasOpen = (await db.collection('forks').countDocuments({ phase: { $in: FORK_IN_FLIGHT } })) + (await db.collection('merges').countDocuments({ phase: { $in: MERGE_IN_FLIGHT } }));
  if (opts.idle && sagasOpen > 0) {
    violations++;
    problem(`fleet: ${sagasOpen} forks or merges still in flight`);
  }
  const audit = await stores.audit.verify();
  for (const b of audit.breaks.slice(0, 10)) problem(`audit chain ${b.chain}: record ${b.seq} ${b.problem}`);

  const fmt = (d: Decimal) => d.toFixed(2);
  return {
    ok: violations === 0 && driftAccounts === 0 && audit.breaks.length === 0,
    accounts,
    entries,
    driftAccounts,
    violations,
    openTransfers,
    audit,
    problems,
    totals: {
      deposits: fmt(fleet.deposits),
      withdrawals: fmt(fleet.withdrawals),
      fees: fmt(fleet.fees),
      dividends: fmt(fleet.dividends),
      realisedPnl: fmt(fleet.realisedPnl),
      transfersIn: fmt(fleet.transfersIn),
      transfersOut: fmt(fleet.transfersOut),
      movedIn: fmt(fleet.movedIn),
      movedOut: fmt(fleet.movedOut),
      cash: fmt(cash),
      costBasis: fmt(costBasis),
    },
  };
}

const expectedHoldings = (f: Flows) =>
  f.deposits.minus(f.withdrawals).minus(f.fees).plus(f.dividends).plus(f.realisedPnl).plus(f.transfersIn).minus(f.transfersOut).plus(f.movedIn).minus(f.movedOut);

async function verifyJournal(stores: LedgerStores, accountId: string) {
  const violations: string[] = [];
  const flows = zeroFlows();
  let prev: Balances = emptyBalances('SAFE');
  let expectSeq = 1;
  let headEntry = null as Awaited<ReturnType<LedgerStores['journal']['head']>>;
  for (;;) {
    const page = await stores.journal.pageAsc(accountId, expectSeq, ENTRY_PAGE);
    for (const e of page) {
      if (e.seq !== expectSeq) {
        violations.push(`account ${accountId}: journal jumps from seq ${expectSeq - 1} to ${e.seq}`);
        return { entries: expectSeq - 1, violations, flows, head: null, headSeq: expectSeq - 1, headEntry };
      }
      if (e.seq === 1 && e.kind !== 'open') violations.push(`account ${accountId}: journal does not start with an open entry`);
      const op = loadOperation(e.kind, e.op);
      const stored = loadBalances(e.after);
      try {
        const effect = applyEffects(prev, op);
        if (!balancesEqual(effect.after, stored) || !effect.realisedPnl.equals(loadUnits('cash', e.realisedPnlCents))) {
          violations.push(`account ${accountId}: entry ${e.seq} (${e.kind}) does not follow from entry ${e.seq - 1}`);
        }
      } catch (err) {
        violations.push(`account ${accountId}: entry ${e.seq} (${e.kind}) breaks an invariant: ${(err as Error).message}`);
      }
      addFlows(flows, op, loadUnits('cash', e.realisedPnlCents));
      prev = stored;
      headEntry = e;
      expectSeq++;
    }
    if (page.length < ENTRY_PAGE) break;
  }
  const holdings = prev.cash.plus(prev.positions.reduce((s, p) => s.plus(p.costBasis), new Decimal(0)));
  if (!holdings.equals(expectedHoldings(flows))) {
    violations.push(`account ${accountId}: cash + positions at cost ${holdings.toFixed(2)} differ from its flows ${expectedHoldings(flows).toFixed(2)}`);
  }
  return { entries: expectSeq - 1, violations, flows, head: headEntry ? prev : null, headSeq: expectSeq - 1, headEntry };
}

function addFlows(f: Flows, op: ReturnType<typeof loadOperation>, realised: Decimal): void {
  switch (op.kind) {
    case 'deposit':
      f.deposits = f.deposits.plus(op.amount);
      break;
    case 'withdrawal':
      f.withdrawals = f.withdrawals.plus(op.amount);
      break;
    case 'fee':
      f.fees = f.fees.plus(op.amount);
      break;
    case 'dividend':
      f.dividends = f.dividends.plus(op.amount);
      break;
    case 'transfer-in':
      f.transfersIn = f.transfersIn.plus(op.amount);
      break;
    case 'transfer-out':
      f.transfersOut = f.transfersOut.plus(op.amount);
      break;
    case 'fork-in':
    case 'fork-out':
    case 'merge-in':
    case 'merge-out': {
      const moved = op.positions.reduce((sum, p) => sum.plus(p.costBasis), op.cash);
      if (op.kind.endsWith('-in')) f.movedIn = f.movedIn.plus(moved);
      else f.movedOut = f.movedOut.plus(moved);
      // Netting a lot against an opposite one realises its profit or loss.
      f.realisedPnl = f.realisedPnl.plus(realised);
      break;
    }
    case 'trade':
      f.fees = f.fees.plus(op.fees);
      f.realisedPnl = f.realisedPnl.plus(realised);
      break;
    default:
      break;
  }
}
