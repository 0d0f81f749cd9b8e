import type { Decimal } from '../money/decimal.js';

const DAY_MS = 86_400_000;
const ITERATIONS_MAX = 200;

/**
 * Money-weighted return: the annual rate x with Σ c_i · (1 + x)^(−days_i / 365) = 0, cash flows
 * from the investor's side (money in negative, money out and the final value positive). Solved by
 * bisection on (−99.99 %, 1000 %); null when the flows never change sign (no rate exists).
 */
export function xirr(flows: Array<{ date: string; amount: Decimal }>): number | null {
  if (flows.length < 2) return null;
  const t0 = Date.parse(`${flows[0]!.date}T00:00:00Z`);
  const cf = flows.map((f) => ({ years: (Date.parse(`${f.date}T00:00:00Z`) - t0) / DAY_MS / 365, c: f.amount.toNumber() }));
  if (!cf.some((f) => f.c > 0) || !cf.some((f) => f.c < 0)) return null;
  const npv = (x: number) => cf.reduce((s, f) => s + f.c / (1 + x) ** f.years, 0);
  let lo = -0.9999;
  let hi = 10;
  let fLo = npv(lo);
  if (Math.sign(fLo) === Math.sign(npv(hi))) return null;
  for (let i = 0; i < ITERATIONS_MAX; i++) {
    const mid = (lo + hi) / 2;
    const fMid = npv(mid);
    if (Math.abs(fMid) < 1e-9 || hi - lo < 1e-12) return mid;
    if (Math.sign(fMid) === Math.sign(fLo)) {
      lo = mid;
      fLo = fMid;
    } else hi = mid;
  }
  return (lo + hi) / 2;
}
