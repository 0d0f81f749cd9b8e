import { describe, expect, it } from 'vitest';
import { defaults } from '../../config/defaults.js';
import { Decimal } from '../money/decimal.js';
import { type Balances, emptyBalances } from './balances.js';
import { applyEffects, checkPolicy, decide, invariantProblem, type Operation } from './ledger.js';
import { tierRules } from './tiers.js';
import { valuate } from './valuation.js';

const d = (s: string) => new Decimal(s);
const GEN = tierRules(defaults, 'GEN');
const noPrices = new Map<string, Decimal>();
const ctx = { rules: GEN, prices: noPrices, sagaId: null };

function account(cash: string, extra: Partial<Balances> = {}): Balances {
  return { ...emptyBalances('ACTIVE'), cash: d(cash), ...extra };
}
function after(b: Balances, op: Operation): Balances {
  const r = decide(b, op, ctx);
  if (!r.ok) throw new Error(`refused: ${r.refusal.code} ${r.refusal.message}`);
  return r.after;
}
function refusal(b: Balances, op: Operation, c = ctx) {
  const r = decide(b, op, c);
  return r.ok ? null : r.refusal.code;
}

describe('deposits, withdrawals and fees', () => {
  it('moves cash exactly', () => {
    const b = after(account('0.10'), { kind: 'deposit', amount: d('0.20') });
    expect(b.cash.toFixed(2)).toBe('0.30');
    expect(after(b, { kind: 'fee', amount: d('0.30'), reason: 'x' }).cash.toFixed(2)).toBe('0.00');
  });

  it('refuses spending held cash', () => {
    const b = account('50000.00', { reserved: d('45000.00') });
    expect(refusal(b, { kind: 'withdrawal', amount: d('5000.01'), close: false })).toBe('insufficient_funds');
    expect(refusal(b, { kind: 'fee', amount: d('5000.01'), reason: 'x' })).toBe('insufficient_funds');
  });

  it('refuses a withdrawal that breaks the tier minimum of an ACTIVE account, at the cent', () => {
    const b = account('15000.00');
    expect(refusal(b, { kind: 'withdrawal', amount: d('5000.00'), close: false })).toBeNull();
    expect(refusal(b, { kind: 'withdrawal', amount: d('5000.01'), close: false })).toBe('min_capital');
    // SAFE accounts do not trade and may go below the floor.
    expect(refusal({ ...b, state: 'SAFE' }, { kind: 'withdrawal', amount: d('14000.00'), close: false })).toBeNull();
  });

  it('closes an account only by withdrawing everything it holds', () => {
    const b = account('15000.00');
    expect(refusal(b, { kind: 'withdrawal', amount: d('14999.99'), close: true })).toBe('close_requires_empty');
    const closed = after(b, { kind: 'withdrawal', amount: d('15000.00'), close: true });
    expect(closed.state).toBe('CLOSED');
    expect(closed.cash.isZero()).toBe(true);
    expect(refusal(closed, { kind: 'deposit', amount: d('1.00') })).toBe('invalid_state');
  });
});

describe('two-phase transfer entries', () => {
  it('hold, then post, moves the held cash out; release gives it back', () => {
    const held = after(account('100.00'), { kind: 'hold', amount: d('40.00'), transferId: 't' });
    expect([held.cash.toFixed(2), held.reserved.toFixed(2)]).toEqual(['100.00', '40.00']);
    const posted = after(held, { kind: 'transfer-out', amount: d('40.00'), transferId: 't', counterpartyId: 'b' });
    expect([posted.cash.toFixed(2), posted.reserved.toFixed(2)]).toEqual(['60.00', '0.00']);
    const released = after(held, { kind: 'release', amount: d('40.00'), transferId: 't' });
    expect([released.cash.toFixed(2), released.reserved.toFixed(2)]).toEqual(['100.00', '0.00']);
  });

  it('refuses a hold beyond available cash and treats a bad settlement as a programmer error', () => {
    expect(refusal(account('10.00'), { kind: 'hold', amount: d('10.01'), transferId: 't' })).toBe('insufficient_funds');
    expect(() => applyEffects(account('10.00'), { kind: 'release', amount: d('1.00'), transferId: 't' })).toThrow(/reserved -1.00 is negative/);
  });
});

describe('trades', () => {
  const buy = (q: string, p: string, fees = '0.00'): Operation => ({ kind: 'trade', side: 'buy', symbol: 'SPY', quantity: d(q), price: d(p), fees: d(fees) });
  const sell = (q: string, p: string, fees = '0.00'): Operation => ({ kind: 'trade', side: 'sell', symbol: 'SPY', quantity: d(q), price: d(p), fees: d(fees) });

  it('buys at cost plus fees, rounding the gross half-even once', () => {
    // 3 × 33.335 = 100.005 → 100.00 (half-even)
    const b = after(account('1000.00'), buy('3', '33.335', '1.00'));
    expect(b.cash.toFixed(2)).toBe('899.00');
    expect(b.positions).toHaveLength(1);
    expect(b.positions[0]!.costBasis.toFixed(2)).toBe('100.00');
  });

  it('sells with cost removed pro rata and realises the difference', () => {
    const held = after(account('10000.00'), buy('3', '100.00'));
    const r = decide(held, sell('1', '110.00', '0.50'), ctx);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.realisedPnl.toFixed(2)).toBe('10.00');
    expect(r.after.positions[0]!.costBasis.toFixed(2)).toBe('200.00');
    expect(r.after.cash.toFixed(2)).toBe('9809.50');
  });

  it('takes the whole cost basis when the last unit is sold, so no cent is stranded', () => {
    let b = after(account('10000.00'), buy('3', '33.33')); // cost 99.99
    b = after(b, sell('1', '33.33')); // removes 33.33
    b = after(b, sell('1', '33.33')); // removes 33.33
    const last = decide(b, sell('1', '33.33'), ctx);
    expect(last.ok && last.after.positions).toEqual([]);
    expect(last.ok && last.realisedPnl.toFixed(2)).toBe('0.00');
  });

  it('refuses selling more than is held, and buying beyond available cash', () => {
    expect(refusal(account('100.00'), sell('1', '10.00'))).toBe('sell_exceeds_position');
    expect(refusal(account('100.00'), buy('10', '10.00', '0.01'))).toBe('insufficient_funds');
  });

  it('checks max capital per position against equity after the trade', () => {
    // GEN: 20 % of equity. Equity 10,000 → at most 2,000 in one symbol.
    expect(refusal(account('10000.00'), buy('20', '100.00'))).toBeNull();
    expect(refusal(account('10000.00'), buy('20.01', '100.00'))).toBe('max_capital_per_position');
  });

  it('checks max positions when a new symbol would be added', () => {
    const rules = { ...GEN, maxPositions: 2 };
    const b = account('10000.00', {
      positions: [
        { symbol: 'AAA', quantity: d('1'), costBasis: d('10.00') },
        { symbol: 'BBB', quantity: d('1'), costBasis: d('10.00') },
      ],
    });
    expect(refusal(b, buy('1', '10.00'), { rules, prices: noPrices, sagaId: null })).toBe('max_positions');
    expect(refusal(b, { ...buy('1', '10.00'), symbol: 'AAA' } as Operation, { rules, prices: noPrices, sagaId: null })).toBeNull();
  });

  it('refuses trading outside ACTIVE', () => {
    expect(refusal(account('100.00', { state: 'SAFE' }), buy('1', '1.00'))).toBe('invalid_state');
  });
});

describe('state changes', () => {
  it('follow the transition table', () => {
    expect(refusal(account('0.00', { state: 'ACTIVE' }), { kind: 'state-change', to: 'SUSPENDED', reason: 'r' })).toBeNull();
    expect(refusal(account('0.00', { state: 'CLOSED' }), { kind: 'state-change', to: 'ACTIVE', reason: 'r' })).toBe('invalid_transition');
    expect(refusal(account('0.00', { state: 'SAFE' }), { kind: 'state-change', to: 'FORKING', reason: 'r' })).toBe('invalid_transition');
  });

  it('close only an empty account', () => {
    expect(refusal(account('0.01'), { kind: 'state-change', to: 'CLOSED', reason: 'r' })).toBe('close_requires_empty');
    expect(refusal(account('0.00'), { kind: 'state-change', to: 'CLOSED', reason: 'r' })).toBeNull();
  });
});

describe('valuation and invariants', () => {
  it('values positions at the last close, or at cost when there is none', () => {
    const b = account('100.00', {
      positions: [
        { symbol: 'AAA', quantity: d('2.5'), costBasis: d('20.00') },
        { symbol: 'BBB', quantity: d('1'), costBasis: d('7.00') },
      ],
    });
    const v = valuate(b, new Map([['AAA', d('10.005')]]));
    expect(v.positionsValue.toFixed(2)).toBe('32.01'); // 25.0125 → 25.01, plus BBB at cost 7.00
    expect(v.equity.toFixed(2)).toBe('132.01');
  });

  it('names the broken invariant', () => {
    expect(invariantProblem(account('1.00', { reserved: d('2.00') }))).toMatch(/below reserved/);
    expect(invariantProblem(account('1.00'))).toBeNull();
  });

  it('does not check policy when replaying effects', () => {
    // A trade made under an older, looser limit still replays.
    const op: Operation = { kind: 'trade', side: 'buy', symbol: 'SPY', quantity: d('90'), price: d('100.00'), fees: d('0.00') };
    expect(checkPolicy(account('10000.00'), op, ctx)?.code).toBe('max_capital_per_position');
    expect(applyEffects(account('10000.00'), op).after.cash.toFixed(2)).toBe('1000.00');
  });
});
