import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { DIST, ROOT } from './helpers/processes.js';

const MARKET = join(ROOT, 'data', 'market');
const dir = mkdtempSync(join(tmpdir(), 'metrics-'));
const KEYS = ['totalReturn', 'cagr', 'annualVolatility', 'sharpe', 'sortino', 'maxDrawdown', 'calmar', 'var95', 'cvar95', 'winRate', 'profitFactor', 'avgWin', 'avgLoss', 'omega', 'tailRatio', 'stability'];

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [join(DIST, 'scripts', 'cli.js'), ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** A date,value CSV of an account holding `shares` of the instrument, from a market file's closes. */
function accountCsv(name: string, rows: Array<{ date: string; close: string }>, shares: number): { path: string; values: number[] } {
  const values = rows.map((r) => Math.round(Number(r.close) * shares * 100) / 100);
  const path = join(dir, name);
  writeFileSync(path, `date,value\n${rows.map((r, i) => `${r.date},${values[i]!.toFixed(2)}`).join('\n')}\n`);
  return { path, values };
}

let spy: { path: string; values: number[] };
let gspc: { path: string; values: number[] };
beforeAll(() => {
  const spyRows = (parse(readFileSync(join(MARKET, 'SPY_D.csv'), 'utf8'), { columns: true }) as Array<{ date: string; close: string }>);
  const gspcRows = (parse(readFileSync(join(MARKET, 'sp500.csv'), 'utf8'), { columns: true }) as Array<{ Date: string; Close: string }>).map((r) => ({ date: r.Date, close: r.Close }));
  spy = accountCsv('spy.csv', spyRows, 1000);
  gspc = accountCsv('gspc.csv', gspcRows, 1);
});

describe('npm run cli -- metrics', () => {
  it('answers every figure for an account holding SPY from 1999 to 2020', () => {
    const r = cli('metrics', '--values', spy.path);
    expect(r.code).toBe(0);
    const m = JSON.parse(r.out);
    expect(Object.keys(m).sort()).toEqual([...KEYS].sort());
    // Checked against direct computations on the same values.
    expect(m.totalReturn).toBeCloseTo(spy.values.at(-1)! / spy.values[0]! - 1, 10);
    let peak = 0;
    let worst = 0;
    for (const v of spy.values) {
      peak = Math.max(peak, v);
      worst = Math.min(worst, v / peak - 1);
    }
    expect(m.maxDrawdown).toBeCloseTo(worst, 12);
    expect(m.cagr).toBeCloseTo((1 + m.totalReturn) ** (252 / (spy.values.length - 1)) - 1, 10);
    expect(m.calmar).toBeCloseTo(m.cagr / Math.abs(m.maxDrawdown), 10);
    expect(m.var95).toBeLessThan(0);
    expect(m.cvar95).toBeLessThanOrEqual(m.var95);
  });

  it('measures SPY against the S&P 500 index on their common dates: beta near 1, small tracking error', () => {
    const m = JSON.parse(cli('metrics', '--values', spy.path, '--benchmark', gspc.path, '--rf', '0.02').out);
    expect(m.alignedPoints).toBe(1258);
    expect(m.beta).toBeGreaterThan(0.95);
    expect(m.beta).toBeLessThan(1.05);
    expect(m.trackingError).toBeLessThan(0.03);
    expect(Object.keys(m)).toEqual(expect.arrayContaining(['beta', 'alpha', 'trackingError', 'informationRatio']));
  });

  it('refuses a series it cannot read, saying where', () => {
    const bad = join(dir, 'bad.csv');
    writeFileSync(bad, 'date,value\n2020-01-01,100\n2020-01-02,1e3\n');
    const r = cli('metrics', '--values', bad);
    expect(r.code).toBe(2);
    expect(r.err).toContain('row 3: not a plain decimal value: 1e3');
  });
});
