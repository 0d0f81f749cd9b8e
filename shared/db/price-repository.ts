import { Schema, type Connection, type Model } from 'mongoose';
import type { Decimal } from '../money/decimal.js';
import { modelOn } from './model.js';
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

export class PriceRepository {
  readonly model: Model<StoredPrice>;

  constructor(connection: Connection) {
    this.model = modelOn<StoredPrice>(connection, 'Price', priceSchema);
  }

  async init(): Promise<void> {
    await this.model.createIndexes();
  }

  /** Upserts closes in bounded batches; loading the same file twice changes nothing. */
  async upsert(prices: Array<{ symbol: string; date: string; close: Decimal }>): Promise<number> {
    let written = 0;
    for (let i = 0; i < prices.length; i += BATCH_MAX) {
      const batch = prices.slice(i, i + BATCH_MAX);
      const result = await this.model.bulkWrite(
        batch.map((p) => ({
          updateOne: {
            filter: { symbol: p.symbol, date: p.date },
            update: { $set: { closeMicros: storeUnits('price', p.close) } },
            upsert: true,
          },
        })),
        { ordered: false },
      );
      written += result.upsertedCount + result.modifiedCount;
    }
    return written;
  }

  /** The last close on or before `date` of each symbol asked for (one query per symbol, indexed). */
  async lastCloses(symbols: string[], date: string): Promise<Map<string, Decimal>> {
    const found = await Promise.all(
      [...new Set(symbols)].map((symbol) =>
        this.model.findOne({ symbol, date: { $lte: date } }, { _id: 0 }).sort({ date: -1 }).lean<StoredPrice>(),
      ),
    );
    return new Map(found.filter((p): p is StoredPrice => p !== null).map((p) => [p.symbol, loadUnits('price', p.closeMicros)]));
  }
}
