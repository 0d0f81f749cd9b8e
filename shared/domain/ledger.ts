import type { Decimal } from '../money/decimal.js';
import { roundTo } from '../money/units.js';
import { assert } from '../runtime/assert.js';
import { type Balances, type Position, ZERO, available, positionOf, withPosition } from './balances.js';
import { type Refusal, type RefusalCode, refuse } from './refusal.js';
import { type AccountState, STATE_ALLOWS, canTransition, canTransitionManually, isSagaState } from './states.js';
import type { TierRules } from './tiers.js';
import { mergedBalances } from './merge.js';
import { type PriceMap, valuate } from './valuation.js';

/** What a saga moves between two accounts: cash, lots at cost, and their market value when planned. */
export interface Move {
  cash: Decimal;
  positions: Position[];
  /** Cash plus the lots at the closes known when the move was planned: the external flow of each side. */
  value: Decimal;
}

/** What an entry does, with every amount already at its scale (the caller rounds once, here: trade gross). */
export type Operation =
  /** The account's first entry: its first state, its saga when a saga opens it, and the first deposit (zero for none), in one write. */
  | { kind: 'open'; state: AccountState; owner: string | null; deposit: Decimal }
  | { kind: 'deposit'; amount: Decimal }
  | { kind: 'withdrawal'; amount: Decimal; close: boolean }
  | { kind: 'hold'; amount: Decimal; transferId: string }
  | { kind: 'release'; amount: Decimal; transferId: string }
  | { kind: 'transfer-out'; amount: Decimal; transferId: string; counterpartyId: string }
  | { kind: 'transfer-in'; amount: Decimal; transferId: string; counterpartyId: string }
  | { kind: 'trade'; side: 'buy' | 'sell'; symbol: string; quantity: Decimal; price: Decimal; fees: Decimal }
  | { kind: 'dividend'; symbol: string; amount: Decimal }
  | { kind: 'fee'; amount: Decimal; reason: string }
  | { kind: 'state-change'; to: AccountState; reason: string }
  /**
   * A saga's first entry on the account it moves out of: the account becomes the saga's (FORKING or
   * MERGING, owner = the saga), the cash to move is held and the plan is recorded, all in one append,
   * so everything that makes the start safe is decided on the head it lands on.
   */
  | ({ kind: 'fork-start'; forkId: string; counterpartyId: string } & Move)
  | ({ kind: 'merge-start'; mergeId: string; counterpartyId: string; closesSource: boolean } & Move)
  /** A fork's move: into the child; out of the parent (settling the hold), which returns it to ACTIVE. */
  | ({ kind: 'fork-out' | 'fork-in'; forkId: string; counterpartyId: string } & Move)
  /** A merge's move: into the target with netting; out of the source (settling its hold). */
  | ({ kind: 'merge-out' | 'merge-in'; mergeId: string; counterpartyId: string } & Move)
  /** Buys at the last close placed by the reinvestment engine, applied as one entry. */
  | { kind: 'reinvestment'; trigger: string; buys: ReinvestmentBuy[] }
  /** A decision not to apply something, kept under its key so every replay gets the same answer. Changes nothing. */
  | { kind: 'refusal'; code: RefusalCode; message: string; operation: string };

export interface ReinvestmentBuy {
  symbol: string;
  quantity: Decimal;
  price: Decimal;
}

export type EntryKind = Operation['kind'];

export interface Effect {
  after: Balances;
  /** Realised profit or loss of a sell (proceeds − cost removed) or of netted lots; zero otherwise. */
  realisedPnl: Decimal;
}

/** The one rounding of a trade: gross = quantity × price, half-even to the cent. */
export const tradeGross = (quantity: Decimal, price: Decimal): Decimal => roundTo('cash', quantity.times(price));

/** A refusal as the entry that records it. */
export const refusalOperation = (operation: string, r: Pick<Refusal, 'code' | 'message'>): Extract<Operation, { kind: 'refusal' }> => ({
  kind: 'refusal',
  code: r.code,
  message: r.message,
  operation,
});

/**
 * Pure arithmetic of an entry on the balances before it. Policy is not checked here (see decide), so
 * `verify` can replay an old journal under today's limits. Broken invariants are programmer errors.
 */
export function applyEffects(b: Balances, op: Operation): Effect {
  let after: Balances;
  let realisedPnl = ZERO;
  switch (op.kind) {
    case 'refusal':
      after = b;
      break;
    case 'open':
      after = { ...b, cash: b.cash.plus(op.deposit), state: op.state, owner: op.owner };
      break;
    case 'deposit':
    case 'transfer-in':
    case 'dividend':
      after = { ...b, cash: b.cash.plus(op.amount) };
      break;
    case 'withdrawal':
      after = { ...b, cash: b.cash.minus(op.amount), state: op.close ? 'CLOSED' : b.state };
      break;
    case 'fee':
      after = { ...b, cash: b.cash.minus(op.amount) };
      break;
    case 'hold':
      after = { ...b, reserved: b.reserved.plus(op.amount) };
      break;
    case 'release':
      after = { ...b, reserved: b.reserved.minus(op.amount) };
      break;
    case 'transfer-out':
      // Settles a hold: the reserved amount leaves with the cash.
      after = { ...b, cash: b.cash.minus(op.amount), reserved: b.reserved.minus(op.amount) };
      break;
    case 'state-change':
      // Leaving a saga state ends the saga's ownership.
      after = { ...b, state: op.to, owner: isSagaState(op.to) ? b.owner : null };
      break;
    case 'fork-start':
      after = { ...b, reserved: b.reserved.plus(op.cash), state: 'FORKING', owner: op.forkId };
      break;
    case 'merge-start':
      after = { ...b, reserved: b.reserved.plus(op.cash), state: 'MERGING', owner: op.mergeId };
      break;
    case 'fork-in':
    case 'merge-in':
      ({ after, realisedPnl } = mergedBalances(b, op));
      break;
    case 'fork-out':
      after = { ...moveOut(b, op), state: 'ACTIVE', owner: null };
      break;
    case 'merge-out':
      after = moveOut(b, op);
      break;
    case 'reinvestment':
      after = op.buys.reduce((acc, buy) => applyEffects(acc, asTrade(buy)).after, b);
      break;
    case 'trade': {
      const gross = tradeGross(op.quantity, op.price);
      const held = positionOf(b, op.symbol);
      if (op.side === 'buy') {
        const position = {
          symbol: op.symbol,
          quantity: (held?.quantity ?? ZERO).plus(op.quantity),
          costBasis: (held?.costBasis ?? ZERO).plus(gross),
        };
        after = { ...b, cash: b.cash.minus(gross).minus(op.fees), positions: withPosition(b, op.symbol, position) };
      } else {
        assert(held && held.quantity.gte(op.quantity), `sell of ${op.quantity.toString()} ${op.symbol} exceeds the position`);
        const remaining = held.quantity.minus(op.quantity);
        // Cost leaves pro rata; selling everything takes the whole basis, so no cent is stranded.
        const costRemoved = remaining.isZero() ? held.costBasis : roundTo('cash', held.costBasis.times(op.quantity).dividedBy(held.quantity));
        realisedPnl = gross.minus(costRemoved);
        const position = remaining.isZero() ? null : { symbol: op.symbol, quantity: remaining, costBasis: held.costBasis.minus(costRemoved) };
        after = { ...b, cash: b.cash.plus(gross).minus(op.fees), positions: withPosition(b, op.symbol, position) };
      }
      break;
    }
  }
  assertInvariants(after);
  return { after, realisedPnl };
}

/** Cash and lots leaving an account: settles the hold on the cash; every lot must be held. */
function moveOut(b: Balances, op: Move): Balances {
  let next: Balances = { ...b, cash: b.cash.minus(op.cash), reserved: b.reserved.minus(op.cash) };
  for (const moved of op.positions) {
    const held = positionOf(next, moved.symbol);
    const quantity = (held?.quantity ?? ZERO).minus(moved.quantity);
    const costBasis = (held?.costBasis ?? ZERO).minus(moved.costBasis);
    assert(!quantity.isNegative(), `a move takes more ${moved.symbol} than is held`);
    next = { ...next, positions: withPosition(next, moved.symbol, quantity.isZero() ? null : { symbol: moved.symbol, quantity, costBasis }) };
  }
  return next;
}

/** A reinvestment buy as the trade it is: at its price, without fees. */
const asTrade = (buy: ReinvestmentBuy): Extract<Operation, { kind: 'trade' }> => ({ kind: 'trade', side: 'buy', symbol: buy.symbol, quantity: buy.quantity, price: buy.price, fees: ZERO });

/** Cash never below zero nor below reserved; nothing reserved below zero; positions positive; saga states owned. */
export function invariantProblem(b: Balances): string | null {
  if (b.cash.isNegative()) return `cash ${b.cash.toFixed(2)} is negative`;
  if (b.reserved.isNegative()) return `reserved ${b.reserved.toFixed(2)} is negative`;
  if (b.cash.lt(b.reserved)) return `cash ${b.cash.toFixed(2)} is below reserved ${b.reserved.toFixed(2)}`;
  for (const p of b.positions) {
    if (!p.quantity.isPositive() || p.quantity.isZero()) return `position ${p.symbol} has quantity ${p.quantity.toString()}`;
    if (p.costBasis.isNegative()) return `position ${p.symbol} has negative cost basis`;
  }
  if (isSagaState(b.state) !== (b.owner !== null)) return `state ${b.state} with owner ${b.owner ?? 'none'}`;
  return null;
}

function assertInvariants(b: Balances): void {
  const problem = invariantProblem(b);
  assert(problem === null, `ledger invariant broken: ${problem}`);
}

export interface PolicyContext {
  rules: TierRules;
  /** Last closes of the held symbols (and the traded one), for limits that depend on value. */
  prices: PriceMap;
  /** The saga the entry belongs to (fork, merge or transfer id), or null for a client's own operation. */
  sagaId: string | null;
}

/**
 * Ownership, checked before any other rule: an account a saga holds (FORKING, MERGING) accepts only
 * entries of that saga. A refusal changes nothing and may be recorded on any account.
 */
function ownershipProblem(b: Balances, op: Operation, sagaId: string | null): Refusal | null {
  if (op.kind === 'refusal' || b.owner === null || b.owner === sagaId) return null;
  return refuse('account_locked', `the account belongs to ${b.owner} until it completes or is rolled back; use its resume or abort`);
}

/** Rules that refuse an operation, checked before its effects; null when it may go ahead. */
export function checkPolicy(b: Balances, op: Operation, ctx: PolicyContext): Refusal | null {
  const locked = ownershipProblem(b, op, ctx.sagaId);
  if (locked) return locked;
  const inState = (allowed: readonly AccountState[], what: string) =>
    allowed.includes(b.state) ? null : refuse('invalid_state', `a ${b.state} account cannot ${what}`);
  const spend = (amount: Decimal, what: string) =>
    available(b).gte(amount)
      ? null
      : refuse('insufficient_funds', `${what} of ${amount.toFixed(2)} exceeds available cash ${available(b).toFixed(2)}`);
  const ownedBySaga = () => (b.owner !== null && b.owner === ctx.sagaId ? null : refuse('invalid_state', `the account is not held by ${ctx.sagaId ?? 'a saga'}`));

  switch (op.kind) {
    case 'refusal':
    case 'open':
      return null;
    case 'deposit':
      return inState(STATE_ALLOWS.deposit, 'take deposits');
    case 'transfer-in':
      return inState(STATE_ALLOWS.transferIn, 'receive transfers');
    case 'merge-in':
      return inState(STATE_ALLOWS.transferIn, 'receive merges');
    case 'dividend':
      return inState(STATE_ALLOWS.income, 'receive dividends');
    case 'fee':
      return inState(STATE_ALLOWS.charge, 'be charged fees') ?? spend(op.amount, 'a fee');
    case 'hold':
      return inState(STATE_ALLOWS.transferOut, 'send transfers') ?? spend(op.amount, 'a transfer');
    case 'fork-start':
    case 'merge-start':
      return checkStart(b, op);
    case 'fork-in':
    case 'fork-out':
    case 'merge-out':
      return ownedBySaga();
    case 'release':
    case 'transfer-out':
      // Settlement of this saga's own hold: the hold it placed is still reserved.
      return b.reserved.gte(op.amount) ? null : refuse('invalid_state', `${op.kind} of ${op.amount.toFixed(2)} exceeds the ${b.reserved.toFixed(2)} reserved`);
    case 'state-change':
      if (isSagaState(op.to)) return refuse('invalid_transition', `${op.to} is entered only by its saga's start`);
      // Out of a saga state only its saga moves the account (ownership refused anyone else above).
      if (!(ctx.sagaId ? canTransition(b.state, op.to) : canTransitionManually(b.state, op.to))) return refuse('invalid_transition', `cannot go from ${b.state} to ${op.to}`);
      if (op.to === 'CLOSED' && (!b.cash.isZero() || b.positions.length > 0 || !b.reserved.isZero())) {
        return refuse('close_requires_empty', 'an account closes only when it holds no cash, holds and positions; withdraw with close first');
      }
      return null;
    case 'withdrawal':
      return inState(STATE_ALLOWS.withdraw, 'pay out') ?? spend(op.amount, 'a withdrawal') ?? checkWithdrawal(b, op, ctx);
    case 'trade':
      return inState(STATE_ALLOWS.trade, 'trade') ?? checkTrade(b, op, ctx);
    case 'reinvestment':
      return inState(STATE_ALLOWS.trade, 'reinvest') ?? checkReinvestment(b, op, ctx);
  }
}

/** What makes a fork or merge safe to start, decided on the very head the start entry lands on. */
function checkStart(b: Balances, op: Extract<Operation, { kind: 'fork-start' | 'merge-start' }>): Refusal | null {
  const what = op.kind === 'fork-start' ? 'forks' : 'merges';
  if (b.state !== 'ACTIVE') return refuse('invalid_state', `the account is ${b.state}; ${what} start from ACTIVE`);
  if (!b.reserved.isZero()) return refuse('invalid_state', `a transfer holds ${b.reserved.toFixed(2)} of the cash; the ${what.slice(0, -1)} waits until it settles`);
  if (available(b).lt(op.cash)) return refuse('insufficient_funds', `the plan moves ${op.cash.toFixed(2)} but ${available(b).toFixed(2)} is available`);
  for (const moved of op.positions) {
    const held = positionOf(b, moved.symbol);
    if (!held || held.quantity.lt(moved.quantity)) return refuse('sell_exceeds_position', `the plan moves more ${moved.symbol} than is held`);
  }
  return null;
}

/** Each buy must pass as a trade on the balances the buys before it left. */
function checkReinvestment(b: Balances, op: Extract<Operation, { kind: 'reinvestment' }>, ctx: PolicyContext): Refusal | null {
  let current = b;
  let prices = ctx.prices;
  for (const buy of op.buys) {
    const trade = asTrade(buy);
    const refusal = checkTrade(current, trade, { ...ctx, prices });
    if (refusal) return refusal;
    current = applyEffects(current, trade).after;
    prices = new Map(prices).set(buy.symbol, buy.price);
  }
  return null;
}

function checkWithdrawal(b: Balances, op: Extract<Operation, { kind: 'withdrawal' }>, ctx: PolicyContext): Refusal | null {
  if (op.close) {
    if (b.positions.length > 0 || !b.reserved.isZero() || !op.amount.equals(b.cash)) {
      return refuse('close_requires_empty', `closing withdraws all cash (${b.cash.toFixed(2)}) from an account with no positions or holds`);
    }
    return canTransition(b.state, 'CLOSED') ? null : refuse('invalid_transition', `cannot close a ${b.state} account`);
  }
  if (b.state === 'ACTIVE') {
    const equityAfter = valuate(b, ctx.prices).equity.minus(op.amount);
    if (equityAfter.lt(ctx.rules.minCapital)) {
      return refuse('min_capital', `equity would fall to ${equityAfter.toFixed(2)}, below the ${ctx.rules.tier} minimum ${ctx.rules.minCapital.toFixed(2)}; withdraw with close to close the account`);
    }
  }
  return null;
}

function checkTrade(b: Balances, op: Extract<Operation, { kind: 'trade' }>, ctx: PolicyContext): Refusal | null {
  const held = positionOf(b, op.symbol);
  if (op.side === 'sell') {
    if (!held || held.quantity.lt(op.quantity)) {
      return refuse('sell_exceeds_position', `sell of ${op.quantity.toString()} ${op.symbol} exceeds the ${held?.quantity.toString() ?? '0'} held`);
    }
    return available(b).plus(tradeGross(op.quantity, op.price)).gte(op.fees)
      ? null
      : refuse('insufficient_funds', 'the fee exceeds the available cash and the proceeds');
  }
  const cost = tradeGross(op.quantity, op.price).plus(op.fees);
  if (available(b).lt(cost)) {
    return refuse('insufficient_funds', `buying costs ${cost.toFixed(2)} but available cash is ${available(b).toFixed(2)}`);
  }
  if (!held && b.positions.length >= ctx.rules.maxPositions) {
    return refuse('max_positions', `the account already holds ${b.positions.length} positions, the ${ctx.rules.tier} limit`);
  }
  const { after } = applyEffects(b, op);
  const prices = new Map(ctx.prices).set(op.symbol, op.price);
  const equity = valuate(after, prices).equity;
  const value = tradeGross(positionOf(after, op.symbol)!.quantity, op.price);
  const limit = equity.times(ctx.rules.maxCapitalPerPosition);
  if (value.gt(limit)) {
    return refuse('max_capital_per_position', `${op.symbol} would be ${value.toFixed(2)}, above ${ctx.rules.maxCapitalPerPosition.times(100).toString()}% of equity (${roundTo('cash', limit).toFixed(2)})`);
  }
  return null;
}

export type Decision = ({ ok: true } & Effect) | { ok: false; refusal: Refusal };

/** Policy, then effects: the whole answer of the ledger to one operation. */
export function decide(b: Balances, op: Operation, ctx: PolicyContext): Decision {
  const refusal = checkPolicy(b, op, ctx);
  return refusal ? { ok: false, refusal } : { ok: true, ...applyEffects(b, op) };
}
