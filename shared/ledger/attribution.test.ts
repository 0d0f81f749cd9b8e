import { describe, expect, it } from 'vitest';
import type { StoredEntry } from '../db/journal-repository.js';
import type { PriceRepository } from '../db/price-repository.js';
import type { StoredSnapshot } from '../db/snapshot-repository.js';
import { PositionReplay, periodAttribution } from './attribution.js';

/** A prices repository answering the one query the attribution makes, from a table of closes. */
const pricesOf = (closes: Record<string, Record<string, string>>) =>
  ({
    model: {
      find: (q: { symbol: string; date: { $lte: string } }) => ({
        sort: () => ({
          limit: (n: number) => ({
            lean: async () =>
              Object.entries(closes[q.symbol] ?? {})
                .filter(([d]) => d <= q.date.$lte)
                .sort(([a], [b]) => (a < b ? 1 : -1))
                .slice(0, n)
                .map(([date, c]) => ({ date, closeMicros: BigInt(Math.round(Number(c) * 1e6)) })),
          }),
        }),
      }),
    },
  }) as unknown as PriceRepository;

const cents = (x: string) => BigInt(Math.round(Number(x) * 100));
const point = (date: string, seq: number, equity: string, netFlow = '0', dailyReturn: number | null = null) =>
  ({ date, seq, equityCents: cents(equity), netFlowCents: cents(netFlow), dailyReturn }) as unknown as StoredSnapshot;
const lot = (symbol: string, quantity: number, cost: string) => ({ symbol, quantityUnits: BigInt(quantity) * 100_000_000n, costBasisCents: cents(cost) });
const entry = (seq: number, kind: string, positions: ReturnType<typeof lot>[], op: Record<string, unknown> = {}) =>
  ({ seq, kind, day: '2026-03-03', op, after: { positions } }) as unknown as StoredEntry;

describe('attribution from the journal and the closes', () => {
  it('takes lots a fork moves out at the move\'s planned value: their later gain is not the account\'s', async () => {
    // 10 XYZ at 100 and 10,000.00 cash; a fork moves out 4 XYZ and 2,000.00, planned at 2,400.00; XYZ closes 110.
    const points = [point('2026-03-02', 5, '11000.00'), point('2026-03-03', 6, '8660.00', '-2400.00', 60 / 11000)];
    const replay = new PositionReplay(points);
    replay.add(entry(5, 'trade', [lot('XYZ', 10, '1000.00')]));
    replay.add(entry(6, 'fork-out', [lot('XYZ', 6, '600.00')], { amountCents: cents('2000.00'), valueCents: cents('2400.00'), positions: [lot('XYZ', 4, '400.00')] }));
    replay.add(entry(7, 'deposit', [lot('XYZ', 6, '600.00')], { amountCents: cents('1.00') }));
    const a = (await periodAttribution(pricesOf({ XYZ: { '2026-03-02': '100', '2026-03-03': '110' } }), points, [60 / 11000], replay))!;
    expect(a.contributions).toEqual([{ symbol: 'XYZ', contribution: expect.closeTo(60 / 11000, 15), pnl: '60.00' }]);
    expect(a.cash.pnl).toBe('0.00');
    expect(Math.abs(a.residual)).toBeLessThan(1e-15);
  });

  it('splits a merge\'s lots by their value on the move\'s day, so the flows add up to the move', async () => {
    // Cash 1,000.00; a merge brings 100.00, 5 AAA and 10 BBB planned at 810.00; AAA closes 100, BBB 20, then 102 and 21.
    const points = [point('2026-03-02', 1, '1000.00'), point('2026-03-03', 2, '1800.00', '810.00', -0.01), point('2026-03-04', 2, '1820.00', '0', 20 / 1800)];
    const replay = new PositionReplay(points);
    const lots = [lot('AAA', 5, '450.00'), lot('BBB', 10, '190.00')];
    replay.add(entry(1, 'open', []));
    replay.add(entry(2, 'merge-in', lots, { amountCents: cents('100.00'), valueCents: cents('810.00'), positions: lots }));
    const prices = pricesOf({ AAA: { '2026-03-03': '100', '2026-03-04': '102' }, BBB: { '2026-03-03': '20', '2026-03-04': '21' } });
    const a = (await periodAttribution(prices, points, [-0.01, 20 / 1800], replay))!;
    const pnl = Object.fromEntries(a.contributions.map((c) => [c.symbol, c.pnl]));
    // 710.00 of lots split 5/7 and 2/7: AAA 507.14, BBB 202.86; valued 500 and 200 on the day, then 510 and 210.
    expect(pnl).toEqual({ AAA: '2.86', BBB: '7.14' });
    // The 10.00 the plan valued the lots above the day's closes is the lots' loss, split likewise; none of it is cash.
    expect(a.cash.pnl).toBe('0.00');
    expect(Math.abs(a.contributions.reduce((s, c) => s + c.contribution, a.cash.contribution) - a.accountReturn)).toBeLessThan(1e-15);
  });

  it('has no attribution when the journal was not read to every point', async () => {
    const points = [point('2026-03-02', 1, '1000.00'), point('2026-03-03', 9, '1000.00', '0', 0)];
    const replay = new PositionReplay(points);
    replay.add(entry(1, 'open', []));
    expect(await periodAttribution(pricesOf({}), points, [0], replay)).toBeNull();
  });
});
