import { Decimal } from '../money/decimal.js';
import { formatUnits } from '../money/units.js';

/**
 * Return attribution by position. Each day t, a symbol contributes c_{s,t} = P&L_{s,t} / V_{t−1}
 * and the cash line the rest of the day's return, c_cash,t = r_t − Σ_s c_{s,t} (fees, interest,
 * rounding: whatever no position earned). The days are then linked so the contributions add up to
 * the period's compounded return R = ∏(1 + r_t) − 1, not to Σ r_t: Carino's scaling,
 * k_t = ln(1 + r_t)/r_t ÷ ln(1 + R)/R, or Menchero's when a day loses everything and the
 * logarithms are undefined. P&L is money (Decimal); contributions are floats.
 */
export interface AttributionDay {
  /** The account's value the day before (V_{t−1}): the base of the day's return. */
  startValue: Decimal;
  /** The day's flow-adjusted return, as the value index reads it. */
  r: number;
  /** Each held symbol's P&L of the day: value change − purchases + sales + dividends ∓ lots moved. */
  pnl: ReadonlyMap<string, Decimal>;
  /** The account's P&L of the day, V_t − V_{t−1} − CF_t. */
  totalPnl: Decimal;
}

export type LinkingMethod = 'carino' | 'menchero';

export interface Attribution {
  method: LinkingMethod;
  /** ∏(1 + r_t) − 1 over the days: what the contributions add up to. */
  accountReturn: number;
  contributions: Array<{ symbol: string; contribution: number; pnl: string }>;
  cash: { contribution: number; pnl: string };
  /** Σ contributions + cash − accountReturn: rounding only (of the order of 1e-16). */
  residual: number;
}

/**
 * Per-day factors β_t with Σ_t r_t β_t = R = ∏(1 + r_t) − 1, so linking daily contributions by them
 * keeps the sum exact. Carino when every log is defined (1 + r > 0), Menchero's optimised linking otherwise.
 */
export function linkingFactors(r: number[]): { method: LinkingMethod; factors: number[]; total: number } {
  const total = r.reduce((acc, x) => acc * (1 + x), 1) - 1;
  // ln(1 + x)/x → 1 as x → 0: log1p keeps small days exact.
  const logRatio = (x: number) => (x === 0 ? 1 : Math.log1p(x) / x);
  if (total > -1 && r.every((x) => x > -1)) {
    const k = logRatio(total);
    return { method: 'carino', factors: r.map((x) => logRatio(x) / k), total };
  }
  const T = r.length;
  const growth = (1 + total) ** (1 / T) - 1;
  // Any A keeps the sum exact (C makes up the rest); Menchero's A is the least distorting, when defined.
  const A = growth === 0 ? 1 : Number.isFinite(growth) ? total / T / growth : 1 / T;
  const sumR = r.reduce((s, x) => s + x, 0);
  const sumR2 = r.reduce((s, x) => s + x * x, 0);
  const C = sumR2 > 0 ? (total - A * sumR) / sumR2 : 0;
  return { method: 'menchero', factors: r.map((x) => A + C * x), total };
}

export function attribute(days: AttributionDay[]): Attribution {
  const { method, factors, total } = linkingFactors(days.map((d) => d.r));
  const linked = new Map<string, number>();
  const pnl = new Map<string, Decimal>();
  let cashLinked = 0;
  let cashPnl = new Decimal(0);
  days.forEach((d, t) => {
    let held = 0;
    let heldPnl = new Decimal(0);
    for (const [symbol, p] of d.pnl) {
      // No base, no return: the index counts such a day as 0, so every contribution is 0 too.
      const c = d.startValue.isZero() ? 0 : p.dividedBy(d.startValue).toNumber();
      held += c;
      heldPnl = heldPnl.plus(p);
      linked.set(symbol, (linked.get(symbol) ?? 0) + c * factors[t]!);
      pnl.set(symbol, (pnl.get(symbol) ?? new Decimal(0)).plus(p));
    }
    cashLinked += (d.r - held) * factors[t]!;
    cashPnl = cashPnl.plus(d.totalPnl.minus(heldPnl));
  });
  const contributions = [...linked]
    .map(([symbol, contribution]) => ({ symbol, contribution, pnl: formatUnits('cash', pnl.get(symbol)!) }))
    .sort((a, b) => b.contribution - a.contribution || (a.symbol < b.symbol ? -1 : 1));
  const sum = contributions.reduce((s, c) => s + c.contribution, cashLinked);
  return {
    method,
    accountReturn: total,
    contributions,
    cash: { contribution: cashLinked, pnl: formatUnits('cash', cashPnl) },
    residual: sum - total,
  };
}
