import type { RedisClient } from '../queue/connection.js';
import type { StoredEntry } from '../db/journal-repository.js';

/**
 * Postings to one account across processes, taken in turn: a short lease per account in Redis, and
 * the newest journal entry of the account published beside it by whoever held the lease. A process
 * that takes the lease reads the head the last holder published, so it appends at the right seq
 * without reading the journal (a read on FerretDB scans the collection) and without losing races to
 * the other replicas. It is an optimisation, never a guarantee: the unique (accountId, seq) index
 * still decides every append; only entries that were inserted are published, an entry never changes
 * once written, and a stale head only loses one race. A holder that dies frees the lease when it expires.
 */
export class SharedHeads {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly ttlMs: number,
  ) {}

  // On a cluster the account's id is the hash tag of both keys: one script reads and writes them,
  // which a cluster allows only within one slot. On one Redis the names stay as they were, so
  // processes of two versions still share leases during a rolling upgrade.
  private tag(accountId: string): string {
    return this.redis.isCluster ? `{${accountId}}` : accountId;
  }

  private key(accountId: string): string {
    return `${this.prefix}:head:${this.tag(accountId)}`;
  }

  private leaseKey(accountId: string): string {
    return `${this.prefix}:lease:${this.tag(accountId)}`;
  }

  /**
   * Takes the account's lease (waiting, bounded, while another process holds it) and answers the head
   * its last holder published. If the lease cannot be had in time, the posting goes on without it:
   * the unique index keeps it correct, only slower.
   */
  async take(accountId: string, token: string): Promise<{ held: boolean; head: StoredEntry | null }> {
    const deadline = Date.now() + LEASE_WAIT_MS_MAX;
    for (let i = 0; ; i++) {
      try {
        const [held, text] = (await this.redis.eval(TAKE, 2, this.leaseKey(accountId), this.key(accountId), token, String(LEASE_TTL_MS))) as [number, string | null];
        if (held === 1 || Date.now() > deadline) return { held: held === 1, head: text ? decode(text.slice(text.indexOf('|') + 1)) : null };
      } catch {
        return { held: false, head: null };
      }
      await new Promise((r) => setTimeout(r, Math.min(1 + i, 10)));
    }
  }

  /** Publishes the entry the holder appended (if any) and gives the lease back, in one round trip. */
  async give(accountId: string, token: string, entry: StoredEntry | null): Promise<void> {
    await this.redis.eval(GIVE, 2, this.leaseKey(accountId), this.key(accountId), token, entry ? String(entry.seq) : '0', entry ? encode(entry) : '', String(this.ttlMs)).catch(() => undefined);
  }

  async get(accountId: string): Promise<StoredEntry | null> {
    try {
      const text = await this.redis.get(this.key(accountId));
      return text ? decode(text.slice(text.indexOf('|') + 1)) : null;
    } catch {
      return null;
    }
  }
}

/** A lease outlives any single append (a batch insert); a holder that died frees it after this. */
const LEASE_TTL_MS = 5_000;
/** How long a posting waits for another process's lease before going on without it. */
const LEASE_WAIT_MS_MAX = 2_000;

const TAKE = `if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {1, redis.call('get', KEYS[2])} end
return {0, false}`;
const GIVE = `if ARGV[3] ~= '' then
  local current = redis.call('get', KEYS[2])
  local seq = current and tonumber(string.match(current, '^(%d+)|'))
  if not seq or seq < tonumber(ARGV[2]) then redis.call('set', KEYS[2], ARGV[2] .. '|' .. ARGV[3], 'PX', ARGV[4]) end
end
if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[1]) end
return 1`;

// Values are `<seq>|<entry json>`: the script compares the seq without decoding the entry.


/** JSON with int64 units kept exact: bigints as tagged strings, dates as ISO text. */
const BIG = '\u0000big:';
const DATE = '\u0000date:';
/** A string of the entry's own that starts with the tag character (free text may): kept as text. */
const STR = '\u0000str:';
const encode = (e: StoredEntry) => JSON.stringify(e, function (this: Record<string, unknown>, k, v) {
  const raw = this[k];
  if (typeof raw === 'bigint') return `${BIG}${raw.toString()}`;
  if (raw instanceof Date) return `${DATE}${raw.toISOString()}`;
  if (typeof raw === 'string' && raw.startsWith('\u0000')) return `${STR}${raw}`;
  return v as unknown;
});
const decode = (text: string): StoredEntry =>
  JSON.parse(text, (_k, v: unknown) => {
    if (typeof v !== 'string' || !v.startsWith('\u0000')) return v;
    if (v.startsWith(STR)) return v.slice(STR.length);
    if (v.startsWith(BIG)) return BigInt(v.slice(BIG.length));
    if (v.startsWith(DATE)) return new Date(v.slice(DATE.length));
    return v;
  }) as StoredEntry;

/** The head's text form, exported for its round-trip test. */
export const headCodec = { encode, decode };
