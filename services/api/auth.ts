import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { RedisClient } from '../../shared/queue/connection.js';
import pLimit from 'p-limit';
import { Counter, type Registry } from 'prom-client';
import { RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract, type RateLimiterRes } from 'rate-limiter-flexible';
import type { Config } from '../../config/schema.js';
import { type Role, parseApiKey, secretMatches } from '../../shared/auth/api-keys.js';
import { keyState } from '../../shared/auth/key-lifecycle.js';
import type { SecurityEvents } from '../../shared/auth/security-events.js';
import type { ApiKeyRepository, StoredApiKey } from '../../shared/db/api-key-repository.js';
import type { Logger } from '../../shared/runtime/logger.js';
import { ApiError } from './errors.js';

export interface Principal {
  /** The key id (never the key), or 'admin-env' for ADMIN_API_KEY: what audit records name as actor. */
  id: string;
  role: Role;
  ownerId: string | null;
}

const RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };
const CACHE_ENTRIES_MAX = 10_000;
/** A replica records a key's use at most this often (last-used is for people, not for authorisation). */
const TOUCH_EVERY_MS = 60_000;

export const AUTH_FAILURE_REASONS = ['missing', 'malformed', 'unknown_key', 'wrong_secret', 'revoked', 'expired', 'throttled', 'busy'] as const;
type FailureReason = (typeof AUTH_FAILURE_REASONS)[number];

const digest = (s: string) => createHash('sha256').update(s).digest();

interface CachedKey {
  principal: Principal;
  /** The stored hash this secret verified against: a re-check compares it without running scrypt. */
  hash: string;
  viaPrevious: boolean;
  until: number;
}

export interface AuthenticatorDeps {
  keys: ApiKeyRepository;
  adminApiKey: string | null;
  config: Pick<Config['api'], 'authCacheMs' | 'authFailuresPerIpMax' | 'authFailuresPerKeyMax' | 'authFailuresPerKeyTotalMax' | 'authFailureWindowMs' | 'authKdfConcurrency' | 'authKdfQueueMax'>;
  events: SecurityEvents;
  registry: Registry;
  logger: Logger;
  /** Failure counts shared by every replica (null: this process only, as in tests). */
  limiterRedis: RedisClient | null;
  limiterPrefix: string;
  /** A subscribed connection that hears revocations and rotations published by any replica or the CLI (null: this process only). */
  subscriber: RedisClient | null;
  channel: string;
}

/**
 * Who is calling, from `Authorization: Bearer <key>`, at the cost of one hash lookup for a key seen
 * in the last `authCacheMs`. Everything slower is guarded: failures are counted per client address
 * and per key id and, past their limit, answered 429 before any database read or scrypt; scrypt runs
 * at most `authKdfConcurrency` at a time with a bounded queue. A revoked or rotated key is dropped
 * from the cache when its change is published; while the subscription is down, cached keys are
 * re-read (one read, no scrypt) on every use, so a missed publish cannot keep a revoked key alive.
 */
export class Authenticator {
  private readonly adminDigest: Buffer | null;
  private readonly cache = new Map<string, CachedKey>();
  private readonly byKeyId = new Map<string, Set<string>>();
  private readonly touched = new Map<string, number>();
  /** How often each key id was forgotten: a verification that began before a change must not cache its result. */
  private readonly changes = new Map<string, number>();
  private readonly kdf;
  private readonly byIp: Throttle;
  private readonly byKeyAndIp: Throttle;
  private readonly byKey: Throttle;
  /** Whether key changes can be heard now, and a count of subscription drops and returns. */
  private live: boolean;
  private epoch = 0;
  private readonly failures: Counter<'reason'>;
  /** Tests wait on this: called after a published key change was applied to the cache. */
  onForget: ((keyId: string) => void) | null = null;

  constructor(private readonly deps: AuthenticatorDeps) {
    this.adminDigest = deps.adminApiKey ? digest(deps.adminApiKey) : null;
    this.kdf = pLimit(deps.config.authKdfConcurrency);
    const limiter = (name: string, points: number): Throttle => {
      const opts = { keyPrefix: `${deps.limiterPrefix}:auth-${name}`, points, duration: Math.ceil(deps.config.authFailureWindowMs / 1000) };
      // A Redis outage must not switch the throttle off: each replica then counts on its own.
      const store: RateLimiterAbstract = deps.limiterRedis ? new RateLimiterRedis({ ...opts, storeClient: deps.limiterRedis, insuranceLimiter: new RateLimiterMemory(opts) }) : new RateLimiterMemory(opts);
      return { name, store, max: points };
    };
    this.byIp = limiter('ip', deps.config.authFailuresPerIpMax);
    // Per key id and address: a guesser locks out only itself. The key id's total is a far higher
    // bound that only many addresses together reach (a key's id is public: it is the actor in records).
    this.byKeyAndIp = limiter('key-ip', deps.config.authFailuresPerKeyMax);
    this.byKey = limiter('key', deps.config.authFailuresPerKeyTotalMax);
    this.live = !deps.subscriber;
    this.failures = new Counter({ name: 'fleet_api_auth_failures_total', help: 'Requests refused by authentication, by reason', labelNames: ['reason'], registers: [deps.registry] });
    for (const reason of AUTH_FAILURE_REASONS) this.failures.inc({ reason }, 0);
    const sub = deps.subscriber;
    if (sub) {
      sub.on('message', (channel: string, keyId: string) => {
        if (channel === deps.channel) this.forget(keyId);
      });
      const down = () => {
        this.live = false;
        this.epoch++;
      };
      sub.on('close', down);
      sub.on('reconnecting', down);
      // Messages published while the subscription was down are lost: start from an empty cache, and
      // count the subscription live only once the channel is subscribed again.
      sub.on('ready', () => {
        this.clear();
        this.epoch++;
        void this.subscribe().catch((err: unknown) => deps.logger.warn({ err }, 'key changes not subscribed; cached keys are re-read on every use'));
      });
    }
  }

  /** Subscribes to key changes; call once before serving. */
  async start(): Promise<void> {
    await this.subscribe();
  }

  private async subscribe(): Promise<void> {
    if (!this.deps.subscriber) return;
    const epoch = this.epoch;
    await this.deps.subscriber.subscribe(this.deps.channel);
    if (epoch === this.epoch) this.live = true;
  }

  /** Drops what is cached of a key (its revocation or rotation reached this replica). */
  forget(keyId: string): void {
    if (this.changes.size >= CACHE_ENTRIES_MAX) this.changes.clear();
    this.changes.set(keyId, (this.changes.get(keyId) ?? 0) + 1);
    for (const d of this.byKeyId.get(keyId) ?? []) this.cache.delete(d);
    this.byKeyId.delete(keyId);
    this.onForget?.(keyId);
  }

  private clear(): void {
    this.cache.clear();
    this.byKeyId.clear();
  }

  /** The caller of a request; 401 when absent or wrong, 429 when this address or key id failed too often. */
  async authenticate(req: FastifyRequest, key: string | undefined = bearerKey(req)): Promise<Principal> {
    if (!key) {
      const held = await this.reserve(req, [this.slot(this.byIp, req.ip)]);
      throw await this.fail(req, 'missing', null, 'send Authorization: Bearer <api key>', held);
    }
    const keyDigest = digest(key);
    if (this.adminDigest && timingSafeEqual(keyDigest, this.adminDigest)) return { id: 'admin-env', role: 'admin', ownerId: null };

    const cacheKey = keyDigest.toString('hex');
    const cached = this.cache.get(cacheKey);
    if (cached && cached.until > Date.now() && (this.live || (await this.stillValid(cached)))) return cached.principal;
    if (cached) this.cache.delete(cacheKey);

    const parsed = parseApiKey(key);
    const slots = [this.slot(this.byIp, req.ip), ...(parsed ? [this.slot(this.byKeyAndIp, `${parsed.keyId}:${req.ip}`), this.slot(this.byKey, parsed.keyId)] : [])];
    // Every attempt takes its place in the failure counts before any read or scrypt, so requests at
    // once cannot all pass a check that none of them has counted in yet; a success gives it back.
    const held = await this.reserve(req, slots);
    let settled = false;
    try {
      if (!parsed) throw await this.fail(req, 'malformed', null, 'not an api key of this fleet', held);
      const changesBefore = this.changes.get(parsed.keyId) ?? 0;
      const epochBefore = this.epoch;
      const stored = await this.deps.keys.get(parsed.keyId);
      if (!stored) throw await this.fail(req, 'unknown_key', parsed.keyId, 'unknown or revoked api key', held);
      const state = keyState(stored, new Date());
      if (state !== 'active') throw await this.fail(req, state === 'revoked' ? 'revoked' : 'expired', parsed.keyId, `the api key is ${state}`, held);

      const match = await this.verify(parsed.secret, stored);
      if (!match) throw await this.fail(req, 'wrong_secret', parsed.keyId, 'unknown or revoked api key', held);
      settled = true;
      await this.release(held);
      const principal: Principal = { id: stored._id, role: stored.role, ownerId: stored.ownerId };
      const until = Math.min(Date.now() + this.deps.config.authCacheMs, stored.expiresAt?.getTime() ?? Infinity, match === 'previous' ? stored.previous!.validUntil.getTime() : Infinity);
      // A change heard, or the subscription lost, while this one was reading: answer it, remember nothing.
      if ((this.changes.get(parsed.keyId) ?? 0) === changesBefore && this.epoch === epochBefore) {
        this.remember(cacheKey, { principal, hash: match === 'previous' ? stored.previous!.hash : stored.hash, viaPrevious: match === 'previous', until });
      }
      this.touch(stored._id);
      return principal;
    } catch (err) {
      // A failure keeps its place in the counts; anything else (scrypt busy, the database down) gives it back.
      if (!settled && !(err instanceof ApiError && err.status === 401)) await this.release(held);
      throw err;
    }
  }

  /** The current secret, or the one a rotation replaced while its grace lasts; scrypt bounded in concurrency and queue. */
  private async verify(secret: string, stored: StoredApiKey): Promise<'current' | 'previous' | null> {
    if (this.kdf.pendingCount >= this.deps.config.authKdfQueueMax) {
      this.failures.inc({ reason: 'busy' });
      throw new ApiError(429, 'auth_busy', 'too many authentications in progress; retry shortly', null, { 'retry-after': '1' });
    }
    return this.kdf(async () => {
      if (await secretMatches(secret, stored.salt, stored.hash)) return 'current';
      const prev = stored.previous;
      if (prev && prev.validUntil.getTime() > Date.now() && (await secretMatches(secret, prev.salt, prev.hash))) return 'previous';
      return null;
    });
  }

  /** A cached key re-checked against its stored document (used while key changes cannot be heard). */
  private async stillValid(c: CachedKey): Promise<boolean> {
    const stored = await this.deps.keys.get(c.principal.id);
    if (!stored || keyState(stored, new Date()) !== 'active') return false;
    return c.viaPrevious ? stored.previous?.hash === c.hash && stored.previous.validUntil.getTime() > Date.now() : stored.hash === c.hash;
  }

  private remember(cacheKey: string, entry: CachedKey): void {
    if (this.cache.size >= CACHE_ENTRIES_MAX) this.clear();
    this.cache.set(cacheKey, entry);
    const set = this.byKeyId.get(entry.principal.id) ?? new Set<string>();
    set.add(cacheKey);
    this.byKeyId.set(entry.principal.id, set);
  }

  private touch(keyId: string): void {
    const now = Date.now();
    if ((this.touched.get(keyId) ?? 0) > now - TOUCH_EVERY_MS) return;
    if (this.touched.size >= CACHE_ENTRIES_MAX) this.touched.clear();
    this.touched.set(keyId, now);
    this.deps.keys.touch(keyId, new Date(now)).catch((err: unknown) => this.deps.logger.warn({ err, keyId }, 'key use not recorded'));
  }

  private slot(t: Throttle, key: string): Slot {
    return { ...t, key };
  }

  /**
   * 429 when the address or the key id is over its failure limit (without counting the refused
   * request, so a lock ends with its window); otherwise counts the attempt in every throttle.
   */
  private async reserve(req: FastifyRequest, slots: Slot[]): Promise<Held[]> {
    const current = await Promise.all(slots.map((s) => s.store.get(s.key).catch(() => null)));
    const over = current.filter((r, i): r is RateLimiterRes => r !== null && r.consumedPoints >= slots[i]!.max);
    if (over.length > 0) this.throttled(over);
    const held = await Promise.all(slots.map(async (s) => ({ slot: s, res: await s.store.penalty(s.key, 1).catch(() => null) })));
    const raced = held.filter((h) => h.res && h.res.consumedPoints > h.slot.max);
    if (raced.length > 0) {
      await this.release(held);
      this.throttled(raced.map((h) => h.res!));
    }
    return held;
  }

  private throttled(over: RateLimiterRes[]): never {
    this.failures.inc({ reason: 'throttled' });
    const seconds = Math.max(1, Math.ceil(Math.max(...over.map((r) => r.msBeforeNext)) / 1000));
    throw new ApiError(429, 'auth_throttled', `too many failed authentications from this address or for this key; retry in ${seconds} s`, { retryAfterSeconds: seconds }, { 'retry-after': String(seconds) });
  }

  private async release(held: Held[]): Promise<void> {
    await Promise.all(held.filter((h) => h.res).map((h) => h.slot.store.reward(h.slot.key, 1).catch(() => undefined)));
  }

  /** Counts a failure (metric; its place in the throttles was taken) and stores it as a security event; answers the 401 to throw. */
  private async fail(req: FastifyRequest, reason: FailureReason, keyId: string | null, message: string, held: Held[]): Promise<ApiError> {
    this.failures.inc({ reason });
    const detail = { reason, keyId, ip: req.ip, method: req.method, path: req.url.split('?')[0] };
    this.deps.events.record({ kind: 'auth-failure', actor: keyId ?? 'anonymous', detail });
    // The failure that reaches a limit is recorded once more as the start of a throttle.
    const reached = held.find((h) => h.res?.consumedPoints === h.slot.max);
    if (reached) this.deps.events.record({ kind: 'auth-throttled', actor: keyId ?? 'anonymous', detail: { ...detail, by: reached.slot.name } });
    return new ApiError(401, 'unauthenticated', message);
  }
}

interface Throttle {
  name: string;
  store: RateLimiterAbstract;
  max: number;
}
interface Slot extends Throttle {
  key: string;
}
interface Held {
  slot: Slot;
  res: RateLimiterRes | null;
}

/** The key of `Authorization: Bearer <key>`, if the request carries one. */
export function bearerKey(req: FastifyRequest): string | undefined {
  const header = req.headers.authorization;
  return header?.startsWith('Bearer ') ? header.slice(7).trim() || undefined : undefined;
}

export function requireRole(p: Principal, role: Role): void {
  if (RANK[p.role] < RANK[role]) throw new ApiError(403, 'forbidden', `this needs the ${role} role; the key has ${p.role}`);
}

/**
 * Owner scoping: admins see everything; others only accounts of their owner. A foreign account
 * answers 404, not 403, so ids of other owners cannot be probed.
 */
export function requireAccess(p: Principal, account: { _id: string; ownerId: string | null } | null, action: 'read' | 'operate'): asserts account {
  requireRole(p, action === 'read' ? 'viewer' : 'operator');
  if (!account || !mayRead(p, account)) throw new ApiError(404, 'not_found', 'no such account');
}

/** Whether the caller may see something of this owner's (accounts, forks, merges, alerts, audit). */
export const mayRead = (p: Principal, x: { ownerId: string | null }) => p.role === 'admin' || (p.ownerId !== null && x.ownerId === p.ownerId);

/** The owner filter of a list: undefined for admins (everything), the key's owner otherwise. */
export const ownerScope = (p: Principal) => (p.role === 'admin' ? undefined : (p.ownerId ?? '\u0000none'));
