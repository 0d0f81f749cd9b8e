import { z } from 'zod';
import { parseDecimal } from '../shared/money/parse.js';
import { QUEUE_NAMES, type QueueName } from '../shared/contracts/queues.js';
import { lossLimits } from '../shared/contracts/account-config.js';
import { stressScenario } from '../shared/contracts/stress-scenario.js';
import { TIER_NAMES, type TierName } from '../shared/domain/tiers.js';

/** A decimal written as a string in config, so no rate or amount passes through a float. */
const decimalString = z.string().refine((s) => {
  try {
    parseDecimal(s);
    return true;
  } catch {
    return false;
  }
}, 'must be a plain decimal string such as "100000.00"');
const fraction = decimalString.refine((s) => Number(s) >= 0 && Number(s) <= 1, 'must be between 0 and 1');
const port = z.number().int().min(1).max(65535);
const positiveInt = z.number().int().positive();

export const SERVICE_NAMES = [
  'api',
  'account-ops',
  'threshold-monitor',
  'fork-executor',
  'consolidation-scanner',
  'performance-snapshotter',
  'alerter',
] as const;

const tierSchema = z.strictObject({
  minCapital: decimalString,
  forkThreshold: decimalString.nullable(),
  maxPositions: positiveInt,
  maxCapitalPerPosition: fraction,
  riskMultiplier: decimalString,
  monitoringFrequencySec: positiveInt,
  nextTier: z.enum(TIER_NAMES).nullable(),
  /**
   * Fork eligibility's margin over the next tier's minimum: an account forks at equity ≥
   * threshold × (1 + margin) + min capital, so its child starts this much above its own floor.
   */
  forkMargin: fraction,
  /** Loss limits of the tier's accounts, by rule (an account's own are more specific; unset rules alert at `alerts`). */
  lossLimits: lossLimits,
});

const queueSchema = z.strictObject({
  attempts: positiveInt.max(100),
  backoffType: z.enum(['exponential', 'fixed']),
  backoffDelayMs: z.number().int().min(0),
  removeOnCompleteAgeSec: positiveInt,
  removeOnCompleteCountMax: positiveInt,
  removeOnFailAgeSec: positiveInt,
  removeOnFailCountMax: positiveInt,
  workerConcurrency: positiveInt.max(1000),
  /** Queue-wide limit across every worker process (BullMQ global concurrency); null = none. */
  globalConcurrency: positiveInt.nullable(),
  lockDurationMs: z.number().int().min(1000),
  stalledIntervalMs: z.number().int().min(1000),
  maxStalledCount: z.number().int().min(0),
});

const serviceSchema = z.strictObject({ port });

export const configSchema = z.strictObject({
  env: z.enum(['development', 'test', 'production']),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  mongodbUrl: z.string().regex(/^mongodb(\+srv)?:\/\//, 'must be a mongodb:// or mongodb+srv:// URL'),
  redisUrl: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL'),
  /** A Redis Cluster's seed nodes (`host:port,host:port,…`); when set it takes precedence over redisUrl. */
  redisClusterNodes: z.string().regex(/^[^\s,:]+:\d{1,5}(,[^\s,:]+:\d{1,5})*$/, 'must be host:port,host:port,…').nullable(),
  /** Key prefix of every BullMQ queue, so several fleets (or test files) can share one Redis. */
  queuePrefix: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
  adminApiKey: z.string().min(16, 'must be at least 16 characters').nullable(),
  apiPort: port,
  /** PEM files of the API's certificate and key: both set, the API speaks HTTPS only. */
  apiTlsCert: z.string().min(1).nullable(),
  apiTlsKey: z.string().min(1).nullable(),
  /**
   * Encrypts the browser sessions of the console and Bull Board; every API replica must share it.
   * Null: a random one per process (a restart signs everyone out, and a session works on one replica).
   */
  apiSessionSecret: z.string().min(32, 'must be at least 32 characters').nullable(),
  shutdownDeadlineMs: z.number().int().min(100).max(120_000),
  /** SPEC §10: live reads the wall clock; simulation reads the simulated time the simulator keeps in Redis. */
  clock: z.strictObject({ mode: z.enum(['live', 'simulation']) }),
  api: z.strictObject({
    /** Requests per key (or per address, unauthenticated) in each window. */
    rateLimitMax: positiveInt,
    rateLimitWindowMs: positiveInt,
    /** How long `?wait=true` waits for an outcome before answering 202 with the status URL. */
    waitTimeoutMs: positiveInt.max(120_000),
    /** How long a bulk request's `?wait=true` waits for every item before answering 202 with the batch's URL. */
    bulkWaitTimeoutMs: positiveInt.max(600_000),
    pageSizeMax: positiveInt.max(500),
    /** How long a verified key is trusted without another scrypt (a published revocation ends it at once). */
    authCacheMs: z.number().int().min(0).max(300_000),
    /**
     * Failed authentications in each window per client address, per key id from one address, and per
     * key id from all addresses together; past any of them, 429 before any read or scrypt.
     */
    authFailuresPerIpMax: positiveInt,
    authFailuresPerKeyMax: positiveInt,
    authFailuresPerKeyTotalMax: positiveInt,
    authFailureWindowMs: z.number().int().min(1000).max(3_600_000),
    /** scrypt runs at once (each ~50 ms of CPU and 16 MiB), and how many may wait before 429. */
    authKdfConcurrency: positiveInt.max(64),
    authKdfQueueMax: positiveInt.max(10_000),
    /** How long a rotated key's old secret keeps working. */
    keyRotationGraceMs: z.number().int().min(0).max(30 * 86_400_000),
    /** Origins a browser may call the API from (exact origins such as https://console.example.com); empty: none. */
    corsOrigins: z.array(z.string().regex(/^https?:\/\/[^/\s]+$/, 'an origin such as https://console.example.com')).max(50),
    /** Behind a reverse proxy: take the client address from X-Forwarded-For (the throttle counts per address). */
    trustProxy: z.boolean(),
    /** How long a browser session (console, Bull Board) lasts after sign-in; the key's own expiry or revocation ends it sooner. */
    sessionTtlMs: z.number().int().min(60_000).max(7 * 86_400_000),
    /** Bull Board only shows the queues (its retry, clean and delete bypass the audit chains); false lets admins act there. */
    queueBoardReadOnly: z.boolean(),
    /** The console's built files (`npm run build`), relative to the working directory. */
    consoleDir: z.string().min(1),
  }),
  mongo: z.strictObject({
    serverSelectionTimeoutMs: positiveInt,
    connectTimeoutMs: positiveInt,
    socketTimeoutMs: positiveInt,
    maxPoolSize: positiveInt.max(500),
    /**
     * Members that acknowledge every write: 'majority' (an acknowledged journal entry survives a
     * primary's failover) or a count of members; never 0 (unacknowledged). From the environment a
     * count is given as its digits (FLEET__MONGO__WRITE_CONCERN=2).
     */
    writeConcern: z.preprocess(
      (v) => (typeof v === 'string' && /^[0-9]+$/.test(v) ? Number(v) : v),
      z.union([z.literal('majority'), positiveInt], "must be 'majority' or a positive number of members"),
    ),
    /** Acknowledged only once the write is in the on-disk journal of each member that counts (j). */
    journal: z.boolean(),
    /**
     * How long a write waits for its acknowledgements (keep it below socketTimeoutMs, which otherwise
     * cuts it short); past it the outcome is unknown and the write is retried.
     */
    wtimeoutMs: positiveInt.max(120_000),
    /** The driver re-sends a write once after a network error or a failover (the server keeps the first outcome). */
    retryWrites: z.boolean(),
    /** The driver re-sends a read once after a network error or a failover. */
    retryReads: z.boolean(),
    /**
     * Where reads go. Only the primary: the same connection reads what authorises a write (journal
     * heads, idempotency keys, saga records, API keys), and a secondary may lag behind it.
     */
    readPreference: z.literal('primary'),
  }),
  /** The ledger's hot path: group commit, the head cache and the projection writer. */
  ledger: z.strictObject({
    /** Journal entries one insert writes at most (group commit). */
    groupCommitBatchMax: positiveInt.max(1000),
    /** Journal inserts in flight at once per process. */
    groupCommitInFlightMax: positiveInt.max(16),
    /** Account heads a process keeps (least recently used dropped first). */
    headCacheMax: positiveInt,
    /** How long a process trusts an account document it read (tier, limits): a configuration change applies within this. */
    accountCacheMs: z.number().int().min(0),
    /** How long a projection waits to share its write with others. */
    projectionFlushMs: positiveInt.max(10_000),
    /** Account projections one batch writes at most. */
    projectionBatchMax: positiveInt.max(5000),
  }),
  tiers: z.strictObject({ GEN: tierSchema, REV: tierSchema, COM: tierSchema }),
  queues: z.strictObject(Object.fromEntries(QUEUE_NAMES.map((q) => [q, queueSchema])) as Record<
    QueueName,
    typeof queueSchema
  >),
  services: z.strictObject(Object.fromEntries(SERVICE_NAMES.map((s) => [s, serviceSchema])) as Record<
    (typeof SERVICE_NAMES)[number],
    typeof serviceSchema
  >),
  schedules: z.strictObject({
    timezone: z.string().min(1),
    snapshotCron: z.string().min(9),
    consolidationScanCron: z.string().min(9),
    reinvestmentCron: z.string().min(9),
    retentionCron: z.string().min(9),
    reconcileEverySec: positiveInt,
    queueDepthEverySec: positiveInt,
  }),
  fork: z.strictObject({
    maxInFlight: positiveInt,
    cooldownHours: positiveInt,
    executeNowConfidence: fraction,
    approveConfidence: fraction,
    weightMarket: fraction,
    weightPerformance: fraction,
    weightSystemLoad: fraction,
    weightTiming: fraction,
    highPerformerAnnualReturn: decimalString,
    defaultMode: z.enum(['full', 'partial', 'config-only']),
    scanPageSizeMax: positiveInt.max(10_000),
    /** The index whose volatility the market factor reads (from `prices`). */
    benchmarkSymbol: z.string().regex(/^[A-Z][A-Z0-9.-]{0,14}$/),
    /** Waiting fork jobs at which the system-load factor's backlog part reaches 0. */
    backlogMax: positiveInt,
    /** A fork untouched this long in an open phase is resumed by the recovery job. */
    recoverAfterSec: positiveInt,
    /** A parent that absorbed one of its own children does not fork again for this many days. */
    afterMergeCooldownDays: z.number().int().min(0),
  }),
  consolidation: z.strictObject({
    underperformanceAnnualReturn: decimalString,
    underperformanceMinHistoryDays: positiveInt,
    fixedCostShareOfReturnsMax: fraction,
    drawdownMax: fraction,
    /** Annualised volatility allowed before the tier's risk multiplier (limit = this × risk_multiplier). */
    volatilityMax: decimalString,
    /** What running one account costs a year (data, monitoring, statements): the savings of closing it. */
    accountFixedCostPerYear: decimalString,
    idleCashShareMax: fraction,
    idleCashSustainedDays: positiveInt,
    hierarchyDepthMax: positiveInt,
    smallAccountsPerParentMax: positiveInt,
    weightTriggerReliability: fraction,
    weightBenefit: fraction,
    weightRisk: fraction,
    autoExecuteConfidence: fraction,
    autoExecuteUrgency: z.enum(['critical', 'high', 'medium', 'low']),
    scanPageSizeMax: positiveInt.max(10_000),
    /** Fees and gains are measured over this many days of history. */
    costWindowDays: positiveInt,
    /** "Below minimum" fires only below min capital × (1 − this)… */
    belowMinTolerance: fraction,
    /** …on this many sessions in a row (a fall under half the minimum fires at once: critical). */
    belowMinSessions: positiveInt,
    /** A child is exempt from every trigger that is not critical for this many days after it opened. */
    childGraceDays: z.number().int().min(0),
  }),
  reinvestment: z.strictObject({
    /** Sessions of closes the dynamic strategy reads for momentum and volatility. */
    momentumSessions: positiveInt.max(252),
    /** Cash buffer kept when the account's config sets none. */
    defaultCashBuffer: fraction,
    /** Profit-threshold trigger: realised profit at which investable cash is put to work, as a share of equity. */
    defaultProfitThreshold: fraction,
  }),
  performance: z.strictObject({
    /** Accounts one snapshot batch job values (the day's fan-out unit). */
    snapshotBatchSize: positiveInt.max(5000),
    /** Daily points older than this are rolled into monthly summaries and pruned (SPEC §7.1: two years). */
    retentionDays: positiveInt,
  }),
  risk: z.strictObject({
    /** Named stress scenarios (`POST /api/v1/risk/stress {"scenario": name}`, `npm run cli -- stress --scenario name`). */
    scenarios: z.record(z.string().regex(/^[a-z0-9-]{1,64}$/), stressScenario),
    /** The crash scenario the simulation report runs the fleet through. */
    reportScenario: z.string(),
    /** Daily closes a symbol's beta to the benchmark is measured over (a market shock reaches a symbol through it). */
    betaSessions: z.number().int().min(20).max(2520),
    /** Accounts one stress test revalues at most. */
    stressAccountsMax: positiveInt.max(5000),
  }),
  reviews: z.strictObject({
    /** After a person rejects a review, its subject (account and kind) is not filed again for this many days. */
    snoozeDaysAfterReject: z.number().int().min(0),
  }),
  alerts: z.strictObject({
    dailyLossMax: fraction,
    weeklyLossMax: fraction,
    monthlyLossMax: fraction,
    drawdownMax: fraction,
    queueBacklogMax: positiveInt,
    webhookUrls: z.array(z.url({ protocol: /^https?$/ })).max(20),
    webhookTimeoutMs: positiveInt,
  }),
});

export type Config = z.infer<typeof configSchema>;
export type { QueueName, TierName };
export type ServiceName = (typeof SERVICE_NAMES)[number];
export type TierConfig = Config['tiers'][TierName];
export type QueueConfig = Config['queues'][QueueName];
