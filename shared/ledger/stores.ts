import type { Connection } from 'mongoose';
import type { Config } from '../../config/schema.js';
import { defaults } from '../../config/defaults.js';
import { AccountRepository } from '../db/account-repository.js';
import { AuditRepository } from '../db/audit-repository.js';
import { ForkRepository } from '../db/fork-repository.js';
import { MergeRepository } from '../db/merge-repository.js';
import { type DocLocks, LocalDocLocks, RedisDocLocks } from '../db/doc-locks.js';
import { JournalRepository, type StoredEntry } from '../db/journal-repository.js';
import { PriceRepository } from '../db/price-repository.js';
import { type StoredTransfer, TransferRepository } from '../db/transfer-repository.js';
import { KeyedMutex } from '../runtime/keyed-mutex.js';
import type { Service } from '../runtime/service.js';
import { HeadCache } from './head-cache.js';
import { GroupInserter } from './group-inserter.js';
import { Projector } from './projector.js';
import { ProjectionBacklog } from './projection-backlog.js';
import { SharedHeads } from './shared-heads.js';

/** A published head is kept this long after its account's last posting (an idle account drops out of Redis). */
const SHARED_HEAD_TTL_MS = 3_600_000;

/**
 * The repositories the ledger works through, opened on one connection, and this process's share of
 * the hot path: the per-account lock, the heads it knows, the group-commit writer and the projector.
 * One set per process (two sets in one process behave as two processes: tests use that).
 */
export interface LedgerStores {
  accounts: AccountRepository;
  journal: JournalRepository;
  transfers: TransferRepository;
  prices: PriceRepository;
  audit: AuditRepository;
  /** The saga records (caches of what their journal entries decided). */
  forks: ForkRepository;
  merges: MergeRepository;
  /** Journal entries, committed in groups. */
  writer: GroupInserter<StoredEntry>;
  /** Transfer records, inserted in groups likewise. */
  transferRecords: GroupInserter<StoredTransfer>;
  heads: HeadCache;
  projector: Projector;
  /** Postings to one account run one at a time in this process. */
  accountLocks: KeyedMutex;
  /** The heads other processes appended, published in Redis (absent for a single process). */
  sharedHeads: SharedHeads | null;
  /** Which processes hold unwritten projections (absent without Redis): the day's readers wait for none. */
  backlog: ProjectionBacklog | null;
  /** Writes what is still pending (projections); call before closing the connection. */
  close(): Promise<void>;
}

export interface LedgerStoresOptions {
  settings?: Config['ledger'];
  /** Locks on account documents shared with the other processes (Redis); in-process ones otherwise. */
  locks?: DocLocks;
  onError?: (err: unknown) => void;
  /** Indexes are built already (another set of stores on the same database did it): skip building them. */
  skipInit?: boolean;
  sharedHeads?: SharedHeads;
  backlog?: ProjectionBacklog;
  /** How long a batched write may go unanswered (see GroupCommitOptions.deadlineMs); from the driver's own timeouts. */
  writeDeadlineMs?: number;
}

export async function openLedgerStores(connection: Connection, opts: LedgerStoresOptions = {}): Promise<LedgerStores> {
  const settings = opts.settings ?? defaults.ledger;
  const accounts = new AccountRepository(connection);
  const journal = new JournalRepository(connection);
  const repositories = { accounts, journal, transfers: new TransferRepository(connection), prices: new PriceRepository(connection), audit: new AuditRepository(connection), forks: new ForkRepository(connection), merges: new MergeRepository(connection) };
  // Every document several processes update is updated under its lock (saga records and account documents).
  const locks = opts.locks ?? new LocalDocLocks();
  for (const r of [accounts, repositories.transfers, repositories.forks, repositories.merges]) r.useLocks(locks);
  if (!opts.skipInit) await Promise.all(Object.values(repositories).map((s) => s.init()));
  const deadlineMs = opts.writeDeadlineMs ?? writeDeadlineMs(defaults.mongo);
  const groupCommit = { batchMax: settings.groupCommitBatchMax, inFlightMax: settings.groupCommitInFlightMax, deadlineMs };
  const projector = new Projector(accounts, { flushMs: settings.projectionFlushMs, batchMax: settings.projectionBatchMax, deadlineMs }, () => new Date(), opts.onError ?? (() => undefined), opts.backlog ?? null);
  return {
    ...repositories,
    writer: new GroupInserter((docs) => journal.insertBatch(docs), groupCommit),
    transferRecords: new GroupInserter((docs) => repositories.transfers.insertBatch(docs), groupCommit),
    heads: new HeadCache(settings.headCacheMax, settings.accountCacheMs),
    projector,
    accountLocks: new KeyedMutex(),
    sharedHeads: opts.sharedHeads ?? null,
    backlog: opts.backlog ?? null,
    close: () => projector.close(),
  };
}

/**
 * The longest a healthy driver takes to answer a write: select the server, connect, wait for the
 * reply. Past it (and a margin) the command is taken as lost with its connection.
 */
const writeDeadlineMs = (m: Config['mongo']) => m.serverSelectionTimeoutMs + m.connectTimeoutMs + m.socketTimeoutMs + 1000;

/**
 * The stores of a service process: account documents locked in Redis (shared with every other
 * process), settings from config, pending projections written before the process stops.
 */
export async function openServiceStores(svc: Pick<Service, 'mongo' | 'workerRedis' | 'config' | 'logger' | 'lifecycle'>): Promise<LedgerStores> {
  const stores = await openLedgerStores(svc.mongo, {
    settings: svc.config.ledger,
    locks: new RedisDocLocks(svc.workerRedis, svc.config.queuePrefix),
    sharedHeads: new SharedHeads(svc.workerRedis, svc.config.queuePrefix, SHARED_HEAD_TTL_MS),
    backlog: new ProjectionBacklog(svc.workerRedis, svc.config.queuePrefix),
    writeDeadlineMs: writeDeadlineMs(svc.config.mongo),
    onError: (err) => svc.logger.warn({ err }, 'a projection batch failed; it is written again with the next one'),
  });
  svc.lifecycle.addProducer({ name: 'projections', close: () => stores.close() });
  return stores;
}
