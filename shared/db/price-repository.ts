import { Schema, type Connection } from 'mongoose';
import type { Decimal } from '../money/decimal.js';
import { isDuplicateKeyError } from './connection.js';
import { Repository } from './model.js';
import { loadUnits, storeUnits } from './stored-units.js';

/** Daily closes (SPEC §3.5); dates as YYYY-MM-DD strings, so they sort and compare as text. */
export interface StoredPrice {
  symbol: string;
  date: string;
  closeMicros: bigint;
}

const priceSchema = new Schema<StoredPrice>(
  {
    symbol: { type: String, required: true },
    date: { type: String, required: true },
    closeMicros: { type: BigInt, required: true },
  },
  { collection: 'prices', versionKey: false, strict: 'throw' },
);
priceSchema.index({ symbol: 1, date: -1 }, { unique: true });

const BATCH_MAX = 1000;
const RECENT_TTL_MS = 30_000;
const RECENT_MAX = 10_000;

export class PriceRepository extends Repository<StoredPrice> {
  constructor(connection: Connection) {
    super(connection, 'Price', priceSchema);
  }

  /**
   * Writes closes idempotently: the symbol's existing closes over the range are read once, new dates
   * are inserted in bulk, and only changed closes are updated. Loading the same file twice writes nothing.
   */
  async upsert(prices: Array<{ symbol: string; date: string; close: Decimal }>): Promise<number> {
    let written = 0;
    const bySymbol = new Map<string, typeof prices>();
    for (const p of prices) bySymbol.set(p.symbol, [...(bySymbol.get(p.symbol) ?? []), p]);
    for (const [symbol, rows] of bySymbol) {
      const dates = rows.map((r) => r.date).sort();
      const existing = new Map(
        (await this.model.find({ symbol, date: { $gte: dates[0]!, $lte: dates[dates.length - 1]! } }, { _id: 0, date: 1, closeMicros: 1 }).lean<StoredPrice[]>())
          .map((p) => [p.date, BigInt(p.closeMicros)]),
      );
      const fresh: StoredPrice[] = [];
      const changed: StoredPrice[] = [];
      for (const r of rows) {
        const closeMicros = storeUnits('price', r.close);
        const known = existing.get(r.date);
        if (known === undefined) fresh.push({ symbol, date: r.date, closeMicros });
        else if (known !== closeMicros) changed.push({ symbol, date: r.date, closeMicros });
      }
      for (let i = 0; i < fresh.length; i += BATCH_MAX) {
        try {
          written += (await this.model.insertMany(fresh.slice(i, i + BATCH_MAX), { ordered: false })).length;
        } catch (err) {
          // A concurrent load inserted some of the same dates first: theirs stand, the rest went in.
          if (!isDuplicateKeyError(err) && !(err as { writeErrors?: unknown[] }).writeErrors) throw err;
          written += (err as { insertedDocs?: unknown[] }).insertedDocs?.length ?? 0;
        }
      }
      for (let i = 0; i < changed.length; i += BATCH_MAX) {
        const result = await this.model.bulkWrite(
          changed.slice(i, i + BATCH_MAX).map((p) => ({ updateOne: { filter: { symbol, date: p.date }, update: { $set: { closeMicros: p.closeMicros } } } })),
          { ordered: false },
        );
        written += result.modifiedCount;
      }
    }
    this.forget();
    return written;
  }

  /** Drops the cached closes: the next valuation reads what another process just loaded. */
  forget(): void {
    this.recent.clear();
    this.generation++;
  }

  /** The last `sessions` closes of a symbol up to `date`, oldest first (trend measures). */
  async closesUpTo(symbol: string, date: string, sessions: number): Promise<Decimal[]> {
    return (await this.seriesUpTo(symbol, date, sessions)).map((p) => p.close);
  }

  /** The same with their dates, to align two symbols day by day (a beta). */
  async seriesUpTo(symbol: string, date: string, sessions: number): Promise<Array<{ date: string; close: Decimal }>> {
    const rows = await this.model.find({ symbol, date: { $lte: date } }, { _id: 0, date: 1, closeMicros: 1 }).sort({ date: -1 }).limit(sessions).lean<Array<{ date: string; closeMicros: bigint }>>();
    return rows.reverse().map((r) => ({ date: r.date, close: loadUnits('price', r.closeMicros) }));
  }

  /**
   * The last close on or before `date` of each symbol asked for. The close of that very date is an
   * equality lookup; otherwise (weekends, holidays) a sorted query, which FerretDB v1 answers in
   * memory. Only a close of that very date is kept for a short while (every account valued in a day
   * asks for the same closes; a correction by another process is seen after that, by this one at
   * once). A fallback to an earlier day, or no close at all, is never kept: the close of the day may
   * be loaded any moment, and a valuation, trade or limit check must see it as soon as it is.
   */
  async lastCloses(symbols: string[], date: string): Promise<Map<string, Decimal>> {
    return new Map([...(await this.lastClosesDated(symbols, date))].map(([symbol, p]) => [symbol, p.close]));
  }

  /** The same with the date of each close (a close from long before `date` says the symbol stopped trading). */
  async lastClosesDated(symbols: string[], date: string): Promise<Map<string, { date: string; close: Decimal }>> {
    const found = await Promise.all([...new Set(symbols)].map((symbol) => this.lastClose(symbol, date)));
    return new Map(found.filter((p): p is StoredPrice => p !== null).map((p) => [p.symbol, { date: p.date, close: loadUnits('price', p.closeMicros) }]));
  }

  private readonly recent = new Map<string, { price: StoredPrice; until: number }>();
  /** Moves on every clear, so a read that started before it does not cache its answer. */
  private generation = 0;

  private async lastClose(symbol: string, date: string): Promise<StoredPrice | null> {
    const key = `${symbol}\u0000${date}`;
    const cached = this.recent.get(key);
    if (cached && cached.until > Date.now()) return cached.price;
    const generation = this.generation;
    const exact = await this.model.findOne({ symbol, date }, { _id: 0 }).lean<StoredPrice>();
    if (!exact) return this.model.findOne({ symbol, date: { $lte: date } }, { _id: 0 }).sort({ date: -1 }).lean<StoredPrice>();
    if (this.recent.size >= RECENT_MAX) this.recent.clear();
    // A read that began before a load in this process must not put back what the load replaced.
    if (generation === this.generation) this.recent.set(key, { price: exact, until: Date.now() + RECENT_TTL_MS });
    return exact;
  }
}
