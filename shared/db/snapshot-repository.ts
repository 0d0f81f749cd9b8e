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
  /** Account fees posted since the previous snapshot (0 on points written before fees were kept). */
  feesCents?: bigint;
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
    feesCents: { type: BigInt, default: 0n },
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
/** A cached series is read again in full after this long, catching a day written out of order (a backfill). */
const TRAIL_REFRESH_MS = 10 * 60_000;
/** Days a cached series is brought forward by single lookups; a longer gap reads it again. */
const TRAIL_PROBE_DAYS_MAX = 10;
/** Accounts whose series a process keeps (least recently read dropped first). */
const TRAILS_MAX = 5000;

const nextDay = (date: string) => new Date(Date.parse(`${date}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
const dayBefore = (date: string) => new Date(Date.parse(`${date}T00:00:00Z`) - 86_400_000).toISOString().slice(0, 10);

interface Trail {
  points: StoredSnapshot[];
  /** Every point up to this date is in `points`. */
  knownUntil: string;
  readAt: number;
}

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
    const r = await this.insertOnce(s, () => this.get(s.accountId, s.date));
    const trail = this.trails.get(s.accountId);
    if (trail && !trail.points.some((p) => p.date === r.stored.date)) trail.points = [...trail.points, r.stored].sort((a, b) => (a.date < b.date ? -1 : 1));
    return r;
  }

  private readonly trails = new Map<string, Trail>();

  /**
   * The account's points up to `upTo`, oldest first, kept in this process: a point is written once
   * and never changed, so a series read once is brought forward by looking up each new day by id
   * (one indexed lookup a day instead of the whole series, which FerretDB cannot range-filter).
   * Read in full again every few minutes, and when the gap is long.
   */
  async trailing(accountId: string, upTo: string): Promise<StoredSnapshot[]> {
    let trail = this.trails.get(accountId);
    const fresh = trail && Date.now() - trail.readAt < TRAIL_REFRESH_MS;
    if (trail && fresh && trail.knownUntil < upTo) {
      const days: string[] = [];
      for (let d = nextDay(trail.knownUntil); d <= upTo && days.length <= TRAIL_PROBE_DAYS_MAX; d = nextDay(d)) days.push(d);
      if (days.length > TRAIL_PROBE_DAYS_MAX) trail = undefined;
      else {
        const found = (await Promise.all(days.map((d) => this.get(accountId, d)))).filter((x): x is StoredSnapshot => x !== null);
        const known = new Set(trail.points.map((p) => p.date));
        trail.points = [...trail.points, ...found.filter((f) => !known.has(f.date))].sort((a, b) => (a.date < b.date ? -1 : 1));
        // Today's point may still be written (the snapshot runs after the close): only earlier days are settled.
        trail.knownUntil = found.some((f) => f.date === upTo) ? upTo : dayBefore(upTo);
      }
    }
    if (!trail || !fresh) {
      const points = await this.series(accountId);
      trail = { points, knownUntil: points.some((p) => p.date === upTo) ? upTo : dayBefore(upTo), readAt: Date.now() };
    }
    this.trails.delete(accountId);
    this.trails.set(accountId, trail);
    if (this.trails.size > TRAILS_MAX) this.trails.delete(this.trails.keys().next().value!);
    return trail.points.filter((p) => p.date <= upTo);
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
