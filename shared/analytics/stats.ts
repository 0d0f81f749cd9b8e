/** Small float statistics for ratios (SPEC §7.2 conventions: ddof = 1, numpy's linear percentile). */

export const sum = (xs: number[]) => xs.reduce((s, x) => s + x, 0);
export const mean = (xs: number[]) => (xs.length === 0 ? Number.NaN : sum(xs) / xs.length);

export function std(xs: number[], ddof = 1): number {
  if (xs.length - ddof <= 0) return Number.NaN;
  const m = mean(xs);
  return Math.sqrt(sum(xs.map((x) => (x - m) ** 2)) / (xs.length - ddof));
}

export function covariance(a: number[], b: number[], ddof = 1): number {
  const ma = mean(a);
  const mb = mean(b);
  return sum(a.map((x, i) => (x - ma) * (b[i]! - mb))) / (a.length - ddof);
}

/** numpy.percentile's default (linear interpolation between closest ranks). */
export function percentile(xs: number[], q: number): number {
  const s = [...xs].sort((x, y) => x - y);
  const pos = (s.length - 1) * (q / 100);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

/** R² of the least-squares line through (i, y_i). */
export function rSquared(ys: number[]): number {
  const xs = ys.map((_, i) => i);
  const vx = covariance(xs, xs, 0);
  const vy = covariance(ys, ys, 0);
  if (vx === 0 || vy === 0) return Number.NaN;
  const c = covariance(xs, ys, 0);
  return (c * c) / (vx * vy);
}

/** A finite number, or null: undefined results are never reported as numbers (SPEC §7.2). */
export const finiteOrNull = (x: number): number | null => (Number.isFinite(x) ? x : null);
