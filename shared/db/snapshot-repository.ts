import { Schema, type Connection } from 'mongoose';
import { Repository, insertBatch } from './model.js';

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
  /** The page it was written in (the account's bucket): a day's points are read back a page at a time. */
  bucket?: number;
  /** The account's running external flows in and out and fees at `seq`: the next point's flows are the difference. */
  flowInCents?: bigint;
  flowOutCents?: bigint;
  feesTotalCents?: bigint;
  /** The flow-adjusted value index after this day, its high-water mark, and its values at the ends of the previous week and month. */
  index?: number;
  indexPeak?: number;
  weekBase?: number;
  monthBase?: number;
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
    bucket: { type: Number },
    flowInCents: { type: BigInt },
    flowOutCents: { type: BigInt },
    feesTotalCents: { type: BigInt },
    index: { type: Number },
    indexPeak: { type: Number },
    weekBase: { type: Number },
    monthBase: { type: Number },
    createdAt: { type: Date, required: true },
  },
  { collection: 'snapshots', versionKey: false, strict: 'throw', _id: false },
);
snapshotSchema.index({ accountId: 1, date: 1 }, { unique: true });
snapshotSchema.index({ date: 1, bucket: 1 });

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
/** Ids one day's lookup names at most; series read whole at once. */
const PROBE_IDS_MAX = 1000;
const SERIES_READS_AT_ONCE = 8;

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
  private readonly days;

  constructor(connection: Connection) {
    super(connection, 'Snapshot', snapshotSchema);
    this.monthly = new MonthlyRepository(connection);
    this.days = new DayRepository(connection);
  }

  override async init(): Promise<void> {
    await Promise.all([super.init(), this.monthly.init(), this.days.init()]);
  }

  /**
   * A page's points in one insert, unordered: a point already there (a re-run of the day) stays as it
   * was and is not counted. Answers the points that were written.
   */
  async recordPage(points: StoredSnapshot[]): Promise<StoredSnapshot[]> {
    if (points.length === 0) return [];
    const results = await insertBatch(this.model as never, points);
    const written = points.filter((_, i) => results[i] === 'inserted');
    for (const p of written) {
      const trail = this.trails.get(p.accountId);
      if (trail && !trail.points.some((x) => x.date === p.date)) trail.points = [...trail.points, p].sort((a, b) => (a.date < b.date ? -1 : 1));
    }
    return written;
  }

  /** The points of one day, a bucket of accounts at a time (or every account's), by equality. */
  async ofDay(date: string, bucket: number | null): Promise<StoredSnapshot[]> {
    return this.model.find(bucket === null ? { date } : { date, bucket }).lean<StoredSnapshot[]>();
  }

  /** The newest point of an account before `date` (an account without a point on the previous snapshot day). */
  async latestBefore(accountId: string, date: string): Promise<StoredSnapshot | null> {
    // Through the process's trail: a check repeated after every price load reads each new day once, not the series.
    return (await this.trailing(accountId, dayBefore(date))).at(-1) ?? null;
  }

  /** Marks a day snapshotted (its fan-out started), so the next day finds which day came before it. */
  async markDay(date: string, now: Date): Promise<void> {
    await this.days.record({ _id: date, at: now });
  }

  /** The last snapshot day before `date` (days are few: one a business day). */
  async dayBefore(date: string): Promise<string | null> {
    const days = await this.days.model.find({}, { _id: 1 }).lean<Array<{ _id: string }>>();
    return days.map((d) => d._id).filter((d) => d < date).sort().at(-1) ?? null;
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
    return (await this.trailingMany([accountId], upTo)).get(accountId)!;
  }

  /**
   * `trailing` for a page of accounts: the days missing from their kept series are looked up with one
   * read a day for all of them (by date, which FerretDB filters in the database, and the page's ids);
   * a series not kept, stale or far behind is read whole, a few at a time.
   */
  async trailingMany(accountIds: string[], upTo: string): Promise<Map<string, StoredSnapshot[]>> {
    const now = Date.now();
    const probes = new Map<string, Array<{ id: string; trail: Trail }>>();
    const reload: string[] = [];
    const ids = [...new Set(accountIds)];
    // This call's series, held here: another call in the process may evict them from the cache meanwhile.
    const mine = new Map<string, Trail>();
    for (const id of ids) {
      const trail = this.trails.get(id);
      if (trail) mine.set(id, trail);
      if (!trail || now - trail.readAt >= TRAIL_REFRESH_MS) {
        reload.push(id);
        continue;
      }
      const days: string[] = [];
      for (let d = nextDay(trail.knownUntil); d <= upTo && days.length <= TRAIL_PROBE_DAYS_MAX; d = nextDay(d)) days.push(d);
      if (days.length > TRAIL_PROBE_DAYS_MAX) reload.push(id);
      else for (const d of days) probes.set(d, [...(probes.get(d) ?? []), { id, trail }]);
    }
    const found = new Map<string, StoredSnapshot[]>();
    for (const [day, wanted] of probes) {
      for (let i = 0; i < wanted.length; i += PROBE_IDS_MAX) {
        const chunk = wanted.slice(i, i + PROBE_IDS_MAX).map((w) => snapshotIdOf(w.id, day));
        const query = chunk.length === 1 ? { _id: chunk[0] } : { date: day, _id: { $in: chunk } };
        for (const p of await this.model.find(query).lean<StoredSnapshot[]>()) found.set(p.accountId, [...(found.get(p.accountId) ?? []), p]);
      }
    }
    const probed = new Map([...probes.values()].flat().map((w) => [w.id, w.trail]));
    for (const [id, trail] of probed) {
      const fresh = found.get(id) ?? [];
      const known = new Set(trail.points.map((p) => p.date));
      trail.points = [...trail.points, ...fresh.filter((f) => !known.has(f.date))].sort((a, b) => (a.date < b.date ? -1 : 1));
      // Today's point may still be written (the snapshot runs after the close): only earlier days are settled.
      trail.knownUntil = fresh.some((f) => f.date === upTo) ? upTo : dayBefore(upTo);
    }
    for (let i = 0; i < reload.length; i += SERIES_READS_AT_ONCE) {
      await Promise.all(
        reload.slice(i, i + SERIES_READS_AT_ONCE).map(async (id) => {
          const points = await this.series(id);
          mine.set(id, { points, knownUntil: points.some((p) => p.date === upTo) ? upTo : dayBefore(upTo), readAt: Date.now() });
        }),
      );
    }
    const out = new Map<string, StoredSnapshot[]>();
    for (const id of ids) {
      const trail = mine.get(id)!;
      // Least recently read first out: a read moves the account to the end.
      this.trails.delete(id);
      this.trails.set(id, trail);
      out.set(id, trail.points.filter((p) => p.date <= upTo));
    }
    while (this.trails.size > TRAILS_MAX) this.trails.delete(this.trails.keys().next().value!);
    return out;
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

/** The business days a snapshot ran for. */
interface StoredDay {
  _id: string;
  at: Date;
}
const daySchema = new Schema<StoredDay>({ _id: { type: String, required: true }, at: { type: Date, required: true } }, { collection: 'snapshotDays', versionKey: false, strict: 'throw', _id: false });

class DayRepository extends Repository<StoredDay> {
  constructor(connection: Connection) {
    super(connection, 'SnapshotDay', daySchema);
  }

  async record(d: StoredDay): Promise<void> {
    await this.insertOnce(d, () => this.model.findById(d._id).lean<StoredDay>());
  }
}
