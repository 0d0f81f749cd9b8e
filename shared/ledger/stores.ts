import type { Connection } from 'mongoose';
import type { Config } from '../../config/schema.js';
import { defaults } from '../../config/defaults.js';
import { AccountRepository } from '../db/account-repository.js';
import { AuditRepository } from '../db/audit-repository.js';
import { ForkRepository } from '../db/fork-repository.js';
import { MergeRepository } from '../db/merge-repository.js';
import { type DocLocks, LocalDocLocks, RedisDocLocks } from '../db/doc-locks.js';
import { JournalRepository } from '../db/journal-repository.js';
import { PriceRepository } from '../db/price-repository.js';
import { TransferRepository } from '../db/transfer-repository.js';
import { KeyedMutex } from '../runtime/keyed-mutex.js';
import type { Service } from '../runtime/service.js';
import { HeadCache } from './head-cache.js';
import { JournalWriter } from './journal-writer.js';
import { Projector } from './projector.js';

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
  writer: JournalWriter;
  heads: HeadCache;
  projector: Projector;
  /** Postings to one account run one at a time in this process. */
  accountLocks: KeyedMutex;
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
  const projector = new Projector(accounts, { flushMs: settings.projectionFlushMs, batchMax: settings.projectionBatchMax }, () => new Date(), opts.onError ?? (() => undefined));
  return {
    ...repositories,
    writer: new JournalWriter(journal, { batchMax: settings.groupCommitBatchMax, inFlightMax: settings.groupCommitInFlightMax }),
    heads: new HeadCache(settings.headCacheMax, settings.accountCacheMs),
    projector,
    accountLocks: new KeyedMutex(),
    close: () => projector.flush(),
  };
}

/**
 * The stores of a service process: account documents locked in Redis (shared with every other
 * process), settings from config, pending projections written before the process stops.
 */
export async function openServiceStores(svc: Pick<Service, 'mongo' | 'workerRedis' | 'config' | 'logger' | 'lifecycle'>): Promise<LedgerStores> {
  const stores = await openLedgerStores(svc.mongo, {
    settings: svc.config.ledger,
    locks: new RedisDocLocks(svc.workerRedis, svc.config.queuePrefix),
    onError: (err) => svc.logger.warn({ err }, 'a projection batch failed; it is written again with the next one'),
  });
  svc.lifecycle.addProducer({ name: 'projections', close: () => stores.close() });
  return stores;
}
