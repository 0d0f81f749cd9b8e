import { type Attribution, type AttributionDay, attribute } from '../analytics/attribution.js';
import type { StoredEntry } from '../db/journal-repository.js';
import type { PriceRepository } from '../db/price-repository.js';
import type { StoredSnapshot } from '../db/snapshot-repository.js';
import { loadPositions } from '../db/stored-balances.js';
import { loadUnits } from '../db/stored-units.js';
import type { Position } from '../domain/balances.js';
import { tradeGross } from '../domain/ledger.js';
import { positionValue } from '../domain/valuation.js';
import { Decimal } from '../money/decimal.js';
import { roundTo } from '../money/units.js';

/** Cash a position took from the account at one entry (buys +, sales and dividends −), or lots a fork or merge moved. */
type FlowEvent =
  | { seq: number; symbol: string; amount: Decimal }
  | { seq: number; sign: 1 | -1; day: string; lotsValue: Decimal; lots: Position[] };

/**
 * What the attribution needs from the journal, gathered in the report's one pass over it: the
 * positions each daily point valued (the balances after the seq the point names) and every entry
 * between the points that moved cash into or out of a position. Feed it every entry in seq order.
 */
export class PositionReplay {
  private readonly wanted: Set<number>;
  private readonly minSeq: number;
  private readonly maxSeq: number;
  readonly held = new Map<number, Position[]>();
  readonly events: FlowEvent[] = [];

  constructor(points: StoredSnapshot[]) {
    const seqs = points.map((p) => p.seq);
    this.wanted = new Set(seqs);
    this.minSeq = Math.min(...seqs);
    this.maxSeq = Math.max(...seqs);
  }

  add(e: StoredEntry): void {
    if (this.wanted.has(e.seq)) this.held.set(e.seq, loadPositions(e.after.positions));
    if (e.seq <= this.minSeq || e.seq > this.maxSeq) return;
    const op = e.op;
    const cash = (units: unknown) => loadUnits('cash', units);
    switch (e.kind) {
      case 'trade': {
        const gross = tradeGross(loadUnits('quantity', op.quantityUnits), loadUnits('price', op.priceMicros));
        // Gross, not net of fees: a trade's fees are the cash line's, not the position's.
        this.events.push({ seq: e.seq, symbol: op.symbol!, amount: op.side === 'buy' ? gross : gross.negated() });
        break;
      }
      case 'reinvestment':
        for (const b of op.buys ?? []) this.events.push({ seq: e.seq, symbol: b.symbol, amount: tradeGross(loadUnits('quantity', b.quantityUnits), loadUnits('price', b.priceMicros)) });
        break;
      case 'dividend':
        this.events.push({ seq: e.seq, symbol: op.symbol!, amount: cash(op.amountCents).negated() });
        break;
      case 'fork-in':
      case 'merge-in':
      case 'fork-out':
      case 'merge-out': {
        const lots = loadPositions(op.positions);
        if (lots.length === 0) break;
        // The move's external flow is its planned value: cash plus the lots at the closes of its plan.
        const lotsValue = cash(op.valueCents ?? 0n).minus(cash(op.amountCents ?? 0n));
        this.events.push({ seq: e.seq, sign: e.kind.endsWith('-in') ? 1 : -1, day: e.day, lotsValue, lots });
        break;
      }
      default:
        break;
    }
  }

  /** Every point's positions were read (false if the journal pass stopped short). */
  get complete(): boolean {
    return [...this.wanted].every((s) => this.held.has(s));
  }
}

/** A symbol's closes, oldest first: the last on or before a date by binary search. */
class Closes {
  constructor(private readonly rows: Array<{ date: string; close: Decimal }>) {}

  onOrBefore(date: string): Decimal | undefined {
    let lo = 0;
    let hi = this.rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.rows[mid]!.date <= date) lo = mid + 1;
      else hi = mid;
    }
    return lo > 0 ? this.rows[lo - 1]!.close : undefined;
  }
}

const daysBetween = (a: string, b: string) => Math.round((Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / 86_400_000);

/**
 * One query per symbol: its closes over [from, to] and the one before `from` (the close a point on a
 * holiday values at). Newest first and limited to the days in the range plus one, which holds every
 * close of the range and at least one before it.
 */
async function closesOf(prices: PriceRepository, symbols: string[], from: string, to: string): Promise<Map<string, Closes>> {
  const limit = daysBetween(from, to) + 2;
  const rows = await Promise.all(
    symbols.map((symbol) => prices.model.find({ symbol, date: { $lte: to } }, { _id: 0, date: 1, closeMicros: 1 }).sort({ date: -1 }).limit(limit).lean<Array<{ date: string; closeMicros: bigint }>>()),
  );
  return new Map(symbols.map((s, i) => [s, new Closes(rows[i]!.map((r) => ({ date: r.date, close: loadUnits('price', r.closeMicros) })).sort((a, b) => (a.date < b.date ? -1 : 1)))]));
}

/**
 * A fork's or merge's lots as cash per symbol: the move's planned lot value split pro rata to each
 * lot's value at the last close of the move's day (its cost without one), the last lot taking the
 * rounding, so the lots' flows add up to the external flow the point took out of the return.
 */
function splitMove(m: Extract<FlowEvent, { lots: Position[] }>, closes: Map<string, Closes>): Array<{ symbol: string; amount: Decimal }> {
  const weights = m.lots.map((l) => {
    const close = closes.get(l.symbol)?.onOrBefore(m.day);
    return close ? l.quantity.times(close) : l.costBasis;
  });
  const total = weights.reduce((s, w) => s.plus(w), new Decimal(0));
  let left = m.lotsValue;
  return m.lots.map((l, i) => {
    const share = i === m.lots.length - 1 ? left : roundTo('cash', total.isZero() ? m.lotsValue.dividedBy(m.lots.length) : m.lotsValue.times(weights[i]!).dividedBy(total));
    left = left.minus(share);
    return { symbol: l.symbol, amount: m.sign === 1 ? share : share.negated() };
  });
}

/**
 * Return attribution of the period's points (see analytics/attribution.ts): each day, a symbol's
 * P&L is its market value at the point minus at the point before, less the cash it took between the
 * two (buys at gross, less sales and dividends, ± lots moved at the move's value). Its market value
 * is the snapshot's own rule (quantity × last close on or before the day, rounded to the cent; cost
 * without a close). `r` are the returns the report computed from the same points, so the linked
 * contributions add up to its total return. Null under two points or when the journal was not read
 * to the last point.
 */
export async function periodAttribution(prices: PriceRepository, points: StoredSnapshot[], r: number[], replay: PositionReplay): Promise<Attribution | null> {
  if (points.length < 2 || r.length !== points.length - 1 || !replay.complete) return null;
  const symbols = [...new Set([...[...replay.held.values()].flat().map((p) => p.symbol), ...replay.events.flatMap((e) => ('lots' in e ? e.lots.map((l) => l.symbol) : [e.symbol]))])].sort();
  const moveDays = replay.events.flatMap((e) => ('day' in e ? [e.day] : []));
  const earliest = [points[0]!.date, ...moveDays].sort()[0]!;
  const closes = symbols.length > 0 ? await closesOf(prices, symbols, earliest, points.at(-1)!.date) : new Map<string, Closes>();

  // Cash taken by each symbol up to each point's seq (points name seqs in any order: a late backfill).
  const flows = replay.events.flatMap((e) => ('lots' in e ? splitMove(e, closes).map((f) => ({ seq: e.seq, ...f })) : [e])).sort((a, b) => a.seq - b.seq);
  const takenAt = new Map<number, Map<string, Decimal>>();
  const running = new Map<string, Decimal>();
  let next = 0;
  for (const seq of [...new Set(points.map((p) => p.seq))].sort((a, b) => a - b)) {
    for (; next < flows.length && flows[next]!.seq <= seq; next++) running.set(flows[next]!.symbol, (running.get(flows[next]!.symbol) ?? new Decimal(0)).plus(flows[next]!.amount));
    takenAt.set(seq, new Map(running));
  }
  const valued = points.map((p) => {
    const held = replay.held.get(p.seq)!;
    const at = new Map(held.flatMap((h) => {
      const c = closes.get(h.symbol)?.onOrBefore(p.date);
      return c ? [[h.symbol, c] as const] : [];
    }));
    return { value: new Map(held.map((h) => [h.symbol, positionValue(h, at)])), taken: takenAt.get(p.seq)! };
  });

  const zero = new Decimal(0);
  const days: AttributionDay[] = points.slice(1).map((p, i) => {
    const before = valued[i]!;
    const after = valued[i + 1]!;
    const start = loadUnits('cash', points[i]!.equityCents);
    const pnl = new Map(
      symbols.map((s) => [
        s,
        (after.value.get(s) ?? zero).minus(before.value.get(s) ?? zero).minus((after.taken.get(s) ?? zero).minus(before.taken.get(s) ?? zero)),
      ]),
    );
    return { startValue: start, r: r[i]!, pnl, totalPnl: loadUnits('cash', p.equityCents).minus(start).minus(loadUnits('cash', p.netFlowCents)) };
  });
  return attribute(days);
}
