import { Schema, type Connection } from 'mongoose';
import { Repository } from './model.js';

/** One account's value on one business day (SPEC §7.1); unique per account and date. */
export interface StoredSnapshot {
  _id: string;
  accountId: string;
  date: string;
  /** The journal seq the snapshot read: the next snapshot's flows are the entries after it. */
  seq: number;
  equityCents: bigint;
  cashCents: bigint;
  positionsValueCents: bigint;
  /** External flows since the previous snapshot (deposits, withdrawals, transfers, fork and merge moves). */
  netFlowCents: bigint;
  /** (V_t − CF_t) / V_{t−1} − 1; null on the first day or after a zero value. */
  dailyReturn: number | null;
  createdAt: Date;
}

/** Points older than the retention window, rolled into one record a month so inception figures survive. */
export interface StoredMonthly {
  _id: string;
  accountId: string;
  month: string;
  days: number;
  firstDate: string;
  lastDate: string;
  endEquityCents: bigint;
  netFlowCents: bigint;
  /** The month's chain-linked return: ∏(1 + r) − 1 over its days. */
  monthReturn: number;
}

const snapshotSchema = new Schema<StoredSnapshot>(
  {
    _id: { type: String, required: true },
    accountId: { type: String, required: true },
    date: { type: String, required: true },
    seq: { type: Number, required: true },
    equityCents: { type: BigInt, required: true },
    cashCents: { type: BigInt, required: true },
    positionsValueCents: { type: BigInt, required: true },
    netFlowCents: { type: BigInt, required: true },
    dailyReturn: { type: Number, default: null },
    createdAt: { type: Date, required: true },
  },
  { collection: 'snapshots', versionKey: false, strict: 'throw', _id: false },
);
snapshotSchema.index({ accountId: 1, date: 1 }, { unique: true });
snapshotSchema.index({ date: 1 });

const monthlySchema = new Schema<StoredMonthly>(
  {
    _id: { type: String, required: true },
    accountId: { type: String, required: true },
    month: { type: String, required: true },
    days: { type: Number, required: true },
    firstDate: { type: String, required: true },
    lastDate: { type: String, required: true },
    endEquityCents: { type: BigInt, required: true },
    netFlowCents: { type: BigInt, required: true },
    monthReturn: { type: Number, required: true },
  },
  { collection: 'snapshotMonthly', versionKey: false, strict: 'throw', _id: false },
);
monthlySchema.index({ accountId: 1, month: 1 }, { unique: true });

export const snapshotIdOf = (accountId: string, date: string) => `${accountId}_${date}`;
const SERIES_MAX = 2000;

export class SnapshotRepository extends Repository<StoredSnapshot> {
  readonly monthly;

  constructor(connection: Connection) {
    super(connection, 'Snapshot', snapshotSchema);
    this.monthly = new MonthlyRepository(connection);
  }

  override async init(): Promise<void> {
    await Promise.all([super.init(), this.monthly.init()]);
  }

  async get(accountId: string, date: string): Promise<StoredSnapshot | null> {
    return this.model.findById(snapshotIdOf(accountId, date)).lean<StoredSnapshot>();
  }

  /** Stores the day once; a re-run of the day finds it and changes nothing. */
  async record(s: StoredSnapshot): Promise<{ stored: StoredSnapshot; created: boolean }> {
    return this.insertOnce(s, () => this.get(s.accountId, s.date));
  }

  /** The account's points, oldest first, optionally within [from, to] (found by account, ordered here). */
  async series(accountId: string, from?: string, to?: string): Promise<StoredSnapshot[]> {
    const all = await this.model.find({ accountId }).limit(SERIES_MAX).lean<StoredSnapshot[]>();
    return all.filter((s) => (!from || s.date >= from) && (!to || s.date <= to)).sort((a, b) => (a.date < b.date ? -1 : 1));
  }
}

class MonthlyRepository extends Repository<StoredMonthly> {
  constructor(connection: Connection) {
    super(connection, 'SnapshotMonthly', monthlySchema);
  }

  async recordOnce(m: StoredMonthly): Promise<void> {
    await this.insertOnce(m, () => this.model.findById(m._id).lean<StoredMonthly>());
  }
}
