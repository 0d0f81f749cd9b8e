import type { StoredAccount } from '../db/account-repository.js';
import type { LedgerStores } from './stores.js';

/**
 * The account as its journal head has it. The projection is written in coalesced batches by the
 * process that posted, so it may not hold the newest entry yet; anything that answers about the
 * account's money now (a write's answer, a stress test) reads the head.
 */
export async function atJournalHead(stores: Pick<LedgerStores, 'journal'>, account: StoredAccount): Promise<StoredAccount> {
  const head = await stores.journal.head(account._id);
  if (!head || head.seq <= account.headSeq) return account;
  return { ...account, head: head.after, headSeq: head.seq, totals: head.totals, state: head.after.state };
}
