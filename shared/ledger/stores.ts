import type { Connection } from 'mongoose';
import { AccountRepository } from '../db/account-repository.js';
import { AuditRepository } from '../db/audit-repository.js';
import { IdempotencyRepository } from '../db/idempotency-repository.js';
import { JournalRepository } from '../db/journal-repository.js';
import { PriceRepository } from '../db/price-repository.js';
import { TransferRepository } from '../db/transfer-repository.js';

/** The repositories the ledger works through, opened on one connection. */
export interface LedgerStores {
  accounts: AccountRepository;
  journal: JournalRepository;
  transfers: TransferRepository;
  prices: PriceRepository;
  idempotency: IdempotencyRepository;
  audit: AuditRepository;
}

export async function openLedgerStores(connection: Connection): Promise<LedgerStores> {
  const stores: LedgerStores = {
    accounts: new AccountRepository(connection),
    journal: new JournalRepository(connection),
    transfers: new TransferRepository(connection),
    prices: new PriceRepository(connection),
    idempotency: new IdempotencyRepository(connection),
    audit: new AuditRepository(connection),
  };
  await Promise.all(Object.values(stores).map((s) => s.init()));
  return stores;
}
