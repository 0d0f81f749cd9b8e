import type { StoredAccount } from '../db/account-repository.js';
import type { StoredEntry } from '../db/journal-repository.js';
import { loadBalances } from '../db/stored-balances.js';
import { loadOperation } from '../db/stored-operation.js';
import { loadUnits } from '../db/stored-units.js';
import type { Balances } from '../domain/balances.js';
import type { Operation } from '../domain/ledger.js';
import type { AccountState } from '../domain/states.js';
import type { TierName } from '../domain/tiers.js';
import { positionValue, valuate, type PriceMap } from '../domain/valuation.js';
import { formatUnits } from '../money/units.js';

/** JSON views: money and quantities as decimal strings with their scale, dates as ISO text. */
export interface EntryView {
  seq: number;
  kind: string;
  at: string;
  actor: string;
  details: Record<string, string | boolean>;
  realisedPnl: string;
  cash: string;
  reservedCash: string;
  state: string;
}

function operationDetails(op: Operation): Record<string, string | boolean> {
  switch (op.kind) {
    case 'open':
      return { state: op.state, ...(op.owner ? { owner: op.owner } : {}), ...(op.deposit.isZero() ? {} : { deposit: formatUnits('cash', op.deposit) }) };
    case 'deposit':
    case 'fee':
    case 'hold':
    case 'release':
    case 'dividend':
    case 'withdrawal':
    case 'transfer-in':
    case 'transfer-out': {
      const out: Record<string, string | boolean> = { amount: formatUnits('cash', op.amount) };
      if ('transferId' in op) out['transferId'] = op.transferId;
      if ('counterpartyId' in op) out['counterpartyId'] = op.counterpartyId;
      if ('symbol' in op) out['symbol'] = op.symbol;
      if ('reason' in op) out['reason'] = op.reason;
      if ('close' in op && op.close) out['close'] = true;
      return out;
    }
    case 'trade':
      return {
        side: op.side,
        symbol: op.symbol,
        quantity: formatUnits('quantity', op.quantity),
        price: formatUnits('price', op.price),
        fees: formatUnits('cash', op.fees),
      };
    case 'state-change':
      return { to: op.to, reason: op.reason };
    case 'refusal':
      return { code: op.code, message: op.message, operation: op.operation };
    case 'fork-start':
    case 'merge-start':
    case 'fork-in':
    case 'fork-out':
    case 'merge-in':
    case 'merge-out':
      return {
        ...('forkId' in op ? { forkId: op.forkId } : { mergeId: op.mergeId }),
        counterpartyId: op.counterpartyId,
        cash: formatUnits('cash', op.cash),
        positions: op.positions.map((p) => `${formatUnits('quantity', p.quantity)} ${p.symbol} at cost ${formatUnits('cash', p.costBasis)}`).join('; '),
        value: formatUnits('cash', op.value),
      };
    case 'reinvestment':
      return {
        trigger: op.trigger,
        buys: op.buys.map((b) => `${formatUnits('quantity', b.quantity)} ${b.symbol} at ${formatUnits('price', b.price)}`).join('; '),
      };
  }
}

export function entryView(e: StoredEntry): EntryView {
  const after = loadBalances(e.after);
  return {
    seq: e.seq,
    kind: e.kind,
    at: new Date(e.at).toISOString(),
    actor: e.actor,
    details: operationDetails(loadOperation(e.kind, e.op)),
    realisedPnl: formatUnits('cash', loadUnits('cash', e.realisedPnlCents)),
    cash: formatUnits('cash', after.cash),
    reservedCash: formatUnits('cash', after.reserved),
    state: after.state,
  };
}

export interface AccountView {
  id: string;
  type: TierName;
  state: AccountState;
  name: string;
  ownerId: string | null;
  parentId: string | null;
  mergedInto: string | null;
  cash: string;
  reservedCash: string;
  availableCash: string;
  positionsValue: string;
  equity: string;
  positions: Array<{ symbol: string; quantity: string; costBasis: string; marketValue: string }>;
  config: Record<string, unknown>;
  seq: number;
  createdAt: string;
  updatedAt: string;
}

/** The account as the API shows it: balances from the journal head, valued at the last closes. */
export function accountView(a: StoredAccount, head: Balances, seq: number, prices: PriceMap): AccountView {
  const { positionsValue, equity } = valuate(head, prices);
  return {
    id: a._id,
    type: a.tier,
    state: head.state,
    name: a.name,
    ownerId: a.ownerId,
    parentId: a.parentId,
    mergedInto: a.mergedInto,
    cash: formatUnits('cash', head.cash),
    reservedCash: formatUnits('cash', head.reserved),
    availableCash: formatUnits('cash', head.cash.minus(head.reserved)),
    positionsValue: formatUnits('cash', positionsValue),
    equity: formatUnits('cash', equity),
    positions: head.positions.map((p) => ({
      symbol: p.symbol,
      quantity: formatUnits('quantity', p.quantity),
      costBasis: formatUnits('cash', p.costBasis),
      marketValue: formatUnits('cash', positionValue(p, prices)),
    })),
    config: a.config,
    seq,
    createdAt: new Date(a.createdAt).toISOString(),
    updatedAt: new Date(a.updatedAt).toISOString(),
  };
}
