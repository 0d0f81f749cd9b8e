import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { Decimal } from '../../shared/money/decimal.js';
import { roundTo } from '../../shared/money/units.js';
import { priceRowsFromCsv } from '../cli.js';
import { Rng } from './random.js';

/** Closes by symbol for each session, oldest first. The benchmark is one of the symbols. */
export interface Market {
  sessions: string[];
  closes: Map<string, Decimal[]>;
  benchmark: string;
  /** Sessions before the first simulated day: history the engines measure from (volatility, momentum). */
  warmup: number;
}

export const WARMUP_SESSIONS = 60;
const PERIODS = 252;

/** Weekdays from `start` (exchange holidays are not modelled, as in the fleet's business days). */
export function businessDays(start: string, count: number): string[] {
  const out: string[] = [];
  for (let t = Date.parse(`${start}T00:00:00Z`); out.length < count; t += 86_400_000) {
    const day = new Date(t).getUTCDay();
    if (day !== 0 && day !== 6) out.push(new Date(t).toISOString().slice(0, 10));
  }
  return out;
}

interface Profile {
  symbol: string;
  beta: number;
  alpha: number;
  vol: number;
  start: number;
}

/**
 * A seeded synthetic market (SPEC §3.5): the benchmark follows geometric Brownian motion (8 % drift,
 * 16 % volatility a year); each stock moves with it by its beta plus its own drift and noise, so
 * some stocks trend, some lag and some swing.
 */
export function syntheticMarket(seed: number, days: number, benchmark: string, startDate = '2025-01-02'): Market {
  const rng = new Rng(seed);
  const sessions = businessDays(startDate, WARMUP_SESSIONS + days);
  const dt = 1 / PERIODS;
  const stocks: Profile[] = ['ALFA', 'BRVO', 'CHRL', 'DLTA', 'ECHO', 'FOXT', 'GOLF', 'HOTL'].map((symbol) => ({
    symbol,
    beta: rng.between(0.6, 1.4),
    alpha: rng.between(-0.06, 0.14),
    vol: rng.between(0.12, 0.35),
    start: rng.between(20, 400),
  }));
  const index = [400];
  const paths = new Map(stocks.map((s) => [s.symbol, [s.start]]));
  for (let i = 1; i < sessions.length; i++) {
    const m = Math.exp((0.08 - 0.16 ** 2 / 2) * dt + 0.16 * Math.sqrt(dt) * rng.normal()) - 1;
    index.push(index[i - 1]! * (1 + m));
    for (const s of stocks) {
      const own = s.alpha * dt + s.vol * Math.sqrt(dt) * rng.normal();
      const path = paths.get(s.symbol)!;
      path.push(Math.max(0.5, path[i - 1]! * (1 + s.beta * m + own)));
    }
  }
  const toCloses = (xs: number[]) => xs.map((x) => roundTo('price', new Decimal(x.toFixed(2))));
  const closes = new Map<string, Decimal[]>([[benchmark, toCloses(index)], ...stocks.map((s): [string, Decimal[]] => [s.symbol, toCloses(paths.get(s.symbol)!)])]);
  return { sessions, closes, benchmark, warmup: WARMUP_SESSIONS };
}

/**
 * Real closes from CSV files (`date,close` or OHLCV; the symbol is the file name up to `_` or `.`):
 * the last warm-up + `days` sessions every file has. The first file is the benchmark.
 */
export function csvMarket(paths: string[], days: number): Market {
  const series = paths.map((p) => {
    const symbol = basename(p).split(/[_.]/)[0]!.toUpperCase();
    return { symbol, rows: priceRowsFromCsv(readFileSync(p, 'utf8'), symbol) };
  });
  const common = series.map((s) => new Set(s.rows.map((r) => r.date))).reduce((a, b) => new Set([...a].filter((d) => b.has(d))));
  const all = [...common].sort();
  const warmup = Math.min(WARMUP_SESSIONS, Math.max(0, all.length - days - 1));
  const sessions = all.slice(-(warmup + days));
  if (sessions.length < days + 1) throw new Error(`the price files share ${all.length} sessions; ${days} days need at least ${days + 1}`);
  const closes = new Map(series.map((s) => {
    const byDate = new Map(s.rows.map((r) => [r.date, r.close]));
    return [s.symbol, sessions.map((d) => byDate.get(d)!)];
  }));
  return { sessions, closes, benchmark: series[0]!.symbol, warmup: sessions.length - days };
}
