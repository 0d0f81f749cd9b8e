import type { Move, Operation } from '../domain/ledger.js';
import type { RefusalCode } from '../domain/refusal.js';
import type { AccountState } from '../domain/states.js';
import { loadUnits, storeUnits } from './stored-units.js';
import { type StoredPosition, loadPositions, storePositions } from './stored-balances.js';

/** An operation as a journal entry stores it: every amount in int64 units, only the fields its kind has. */
export interface StoredOperation {
  amountCents?: bigint;
  close?: boolean;
  transferId?: string;
  counterpartyId?: string;
  side?: 'buy' | 'sell';
  symbol?: string;
  quantityUnits?: bigint;
  priceMicros?: bigint;
  feesCents?: bigint;
  reason?: string;
  toState?: AccountState;
  owner?: string;
  forkId?: string;
  mergeId?: string;
  positions?: StoredPosition[];
  /** Market value of a move when it was planned (its external flow on each side). */
  valueCents?: bigint;
  closesSource?: boolean;
  buys?: Array<{ symbol: string; quantityUnits: bigint; priceMicros: bigint }>;
  /** A refusal: its code, message and the operation it refused. */
  code?: RefusalCode;
  operation?: string;
}

const storeMove = (m: Move) => ({ amountCents: storeUnits('cash', m.cash), positions: storePositions(m.positions), valueCents: storeUnits('cash', m.value) });
const loadMove = (s: StoredOperation): Move => ({ cash: loadUnits('cash', s.amountCents), positions: loadPositions(s.positions), value: loadUnits('cash', s.valueCents ?? 0n) });

export function storeOperation(op: Operation): StoredOperation {
  switch (op.kind) {
    case 'refusal':
      return { code: op.code, reason: op.message, operation: op.operation };
    case 'open':
      return { toState: op.state, ...(op.owner ? { owner: op.owner } : {}), ...(op.deposit.isZero() ? {} : { amountCents: storeUnits('cash', op.deposit) }) };
    case 'deposit':
      return { amountCents: storeUnits('cash', op.amount) };
    case 'withdrawal':
      return { amountCents: storeUnits('cash', op.amount), close: op.close };
    case 'hold':
    case 'release':
      return { amountCents: storeUnits('cash', op.amount), transferId: op.transferId };
    case 'transfer-out':
    case 'transfer-in':
      return { amountCents: storeUnits('cash', op.amount), transferId: op.transferId, counterpartyId: op.counterpartyId };
    case 'trade':
      return {
        side: op.side,
        symbol: op.symbol,
        quantityUnits: storeUnits('quantity', op.quantity),
        priceMicros: storeUnits('price', op.price),
        feesCents: storeUnits('cash', op.fees),
      };
    case 'dividend':
      return { symbol: op.symbol, amountCents: storeUnits('cash', op.amount) };
    case 'fee':
      return { amountCents: storeUnits('cash', op.amount), reason: op.reason };
    case 'state-change':
      return { toState: op.to, reason: op.reason };
    case 'fork-start':
    case 'fork-in':
    case 'fork-out':
      return { forkId: op.forkId, counterpartyId: op.counterpartyId, ...storeMove(op) };
    case 'merge-start':
      return { mergeId: op.mergeId, counterpartyId: op.counterpartyId, closesSource: op.closesSource, ...storeMove(op) };
    case 'merge-in':
    case 'merge-out':
      return { mergeId: op.mergeId, counterpartyId: op.counterpartyId, ...storeMove(op) };
    case 'reinvestment':
      return {
        reason: op.trigger,
        buys: op.buys.map((b) => ({ symbol: b.symbol, quantityUnits: storeUnits('quantity', b.quantity), priceMicros: storeUnits('price', b.price) })),
      };
  }
}

export function loadOperation(kind: Operation['kind'], s: StoredOperation): Operation {
  const amount = () => loadUnits('cash', s.amountCents);
  switch (kind) {
    case 'refusal':
      return { kind, code: s.code!, message: s.reason ?? '', operation: s.operation ?? '' };
    case 'open':
      return { kind, state: s.toState!, owner: s.owner ?? null, deposit: loadUnits('cash', s.amountCents ?? 0n) };
    case 'deposit':
      return { kind, amount: amount() };
    case 'withdrawal':
      return { kind, amount: amount(), close: s.close ?? false };
    case 'hold':
    case 'release':
      return { kind, amount: amount(), transferId: s.transferId! };
    case 'transfer-out':
    case 'transfer-in':
      return { kind, amount: amount(), transferId: s.transferId!, counterpartyId: s.counterpartyId! };
    case 'trade':
      return {
        kind,
        side: s.side!,
        symbol: s.symbol!,
        quantity: loadUnits('quantity', s.quantityUnits),
        price: loadUnits('price', s.priceMicros),
        fees: loadUnits('cash', s.feesCents),
      };
    case 'dividend':
      return { kind, symbol: s.symbol!, amount: amount() };
    case 'fee':
      return { kind, amount: amount(), reason: s.reason ?? '' };
    case 'state-change':
      return { kind, to: s.toState!, reason: s.reason ?? '' };
    case 'fork-start':
    case 'fork-in':
    case 'fork-out':
      return { kind, forkId: s.forkId!, counterpartyId: s.counterpartyId!, ...loadMove(s) };
    case 'merge-start':
      return { kind, mergeId: s.mergeId!, counterpartyId: s.counterpartyId!, closesSource: s.closesSource ?? true, ...loadMove(s) };
    case 'merge-in':
    case 'merge-out':
      return { kind, mergeId: s.mergeId!, counterpartyId: s.counterpartyId!, ...loadMove(s) };
    case 'reinvestment':
      return {
        kind,
        trigger: s.reason ?? '',
        buys: (s.buys ?? []).map((b) => ({ symbol: b.symbol, quantity: loadUnits('quantity', b.quantityUnits), price: loadUnits('price', b.priceMicros) })),
      };
  }
}
