import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Schema, type Connection } from 'mongoose';
import { pino } from 'pino';
import { loadConfig } from '../config/load.js';
import { connectMongo } from '../shared/db/connection.js';
import { modelOn } from '../shared/db/model.js';
import { loadUnits, readStoredUnits, storeUnits } from '../shared/db/stored-units.js';
import { isolatedEnv } from './helpers/env.js';

const iso = isolatedEnv('units');
let mongo: Connection;

interface Row {
  label: string;
  equityCents: bigint;
}
const rowSchema = new Schema<Row>({ label: String, equityCents: { type: BigInt, required: true } }, { collection: 'rows' });

beforeAll(async () => {
  mongo = await connectMongo(iso.mongodbUrl, loadConfig(iso.env).mongo, pino({ level: 'silent' }));
});
afterAll(async () => {
  await mongo?.dropDatabase();
  await mongo?.close();
});

describe('int64 units through the MongoDB-protocol server', () => {
  it('round-trips amounts far beyond 2^53 cents exactly and range-queries them in order', async () => {
    const Rows = modelOn<Row>(mongo, 'Row', rowSchema);
    const amounts = ['0.01', '100000.00', '90071992547409.93', '90071992547409.94', '92233720368547758.07'];
    await Rows.insertMany(amounts.map((a) => ({ label: a, equityCents: storeUnits('cash', a) })));

    const lean = await Rows.find({}).sort({ equityCents: 1 }).lean();
    expect(lean.map((r) => loadUnits('cash', r.equityCents).toFixed(2))).toEqual(amounts);
    expect(typeof lean[0]!.equityCents).toBe('bigint');

    // The boundary between two values one cent apart above 2^53 is kept by the index range.
    const above = await Rows.find({ equityCents: { $gte: storeUnits('cash', '90071992547409.94') } }).lean();
    expect(above.map((r) => r.label).sort()).toEqual(['90071992547409.94', '92233720368547758.07']);
  });

  it('reads the shapes a stored integer may take', () => {
    expect(readStoredUnits(5)).toBe(5n);
    expect(readStoredUnits(2n ** 60n)).toBe(2n ** 60n);
    expect(() => readStoredUnits(1.5)).toThrow(TypeError);
    expect(() => readStoredUnits('100')).toThrow(TypeError);
  });
});
