import type { StoredAccount } from '../db/account-repository.js';
import type { StoredEntry } from '../db/journal-repository.js';

/** What a process knows of an account: its journal head and its document (tier, configuration, owner). */
export interface KnownAccount {
  account: StoredAccount;
  /** The newest entry this process wrote or read; null before the account's 'open' entry. */
  head: StoredEntry | null;
  /** When the document was read: configuration changes reach a process within `accountTtlMs`. */
  accountReadAt: number;
}

/**
 * The heads this process appended or read, kept under the per-account lock so the next posting needs
 * no read. A head can be stale (another process appended since): the append at its seq + 1 then loses
 * on the unique (accountId, seq) index and the poster reloads. Least recently used heads are dropped.
 */
export class HeadCache {
  private readonly known = new Map<string, KnownAccount>();

  constructor(
    private readonly sizeMax: number,
    private readonly accountTtlMs: number,
  ) {}

  get(accountId: string): KnownAccount | undefined {
    const k = this.known.get(accountId);
    if (!k) return undefined;
    this.known.delete(accountId);
    this.known.set(accountId, k);
    return k;
  }

  /** Whether the document kept for an account is older than the configuration may be (the head stays valid). */
  documentStale(k: KnownAccount, nowMs: number): boolean {
    return nowMs - k.accountReadAt > this.accountTtlMs;
  }

  set(accountId: string, k: KnownAccount): void {
    this.known.delete(accountId);
    this.known.set(accountId, k);
    if (this.known.size > this.sizeMax) this.known.delete(this.known.keys().next().value!);
  }

  /** A newer head than the one kept, without rereading the document. */
  advance(accountId: string, head: StoredEntry): void {
    const k = this.known.get(accountId);
    if (k && (!k.head || k.head.seq < head.seq)) k.head = head;
  }

  forget(accountId: string): void {
    this.known.delete(accountId);
  }
}
