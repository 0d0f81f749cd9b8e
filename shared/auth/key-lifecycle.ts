import type { RedisClient } from '../queue/connection.js';
import type { ApiKeyRepository, StoredApiKey } from '../db/api-key-repository.js';
import { type Role, newApiKey } from './api-keys.js';
import type { SecurityEvents } from './security-events.js';

/**
 * Creating, listing, revoking and rotating API keys: one implementation for the API's /keys routes
 * and the CLI's `apikey` commands. Every change is a security event; a revocation or rotation is also
 * published to every API replica, which drops the key from its authentication cache at once.
 */
export interface KeyDeps {
  keys: ApiKeyRepository;
  events: SecurityEvents;
  /** Where changes are published (null: no replica to tell, e.g. the CLI without Redis). */
  publisher: RedisClient | null;
  channel: string;
  now: () => Date;
}

export type KeyState = 'active' | 'expired' | 'revoked';

/** The channel API replicas listen on for revoked and rotated key ids. */
export const keyChangesChannel = (queuePrefix: string) => `${queuePrefix}:api-key-changes`;

export function keyState(k: Pick<StoredApiKey, 'revokedAt' | 'expiresAt'>, now: Date): KeyState {
  if (k.revokedAt) return 'revoked';
  if (k.expiresAt && k.expiresAt.getTime() <= now.getTime()) return 'expired';
  return 'active';
}

const iso = (d: Date | null | undefined) => (d ? new Date(d).toISOString() : null);

/** A key as it is shown: never its secret or hash. */
export function keyView(k: StoredApiKey & { lastUsedAt?: Date | null }, now: Date) {
  return {
    keyId: k._id,
    role: k.role,
    ownerId: k.ownerId,
    label: k.label,
    state: keyState(k, now),
    createdAt: iso(k.createdAt)!,
    createdBy: k.createdBy,
    expiresAt: iso(k.expiresAt),
    revokedAt: iso(k.revokedAt),
    rotatedAt: iso(k.rotatedAt),
    previousSecretValidUntil: k.previous && k.previous.validUntil.getTime() > now.getTime() ? iso(k.previous.validUntil) : null,
    lastUsedAt: iso(k.lastUsedAt),
  };
}
export type KeyView = ReturnType<typeof keyView>;

export class KeyError extends Error {
  constructor(
    readonly status: 404 | 409 | 422,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function createKey(deps: KeyDeps, req: { role: Role; ownerId: string | null; expiresAt: Date | null; label: string | null }, actor: string): Promise<{ key: string; view: KeyView }> {
  if (req.role !== 'admin' && !req.ownerId) throw new KeyError(422, 'owner_required', 'viewer and operator keys belong to an owner: give ownerId');
  if (req.role === 'admin' && req.ownerId) throw new KeyError(422, 'owner_not_allowed', 'admin keys see every owner; they have no ownerId');
  const now = deps.now();
  if (req.expiresAt && req.expiresAt.getTime() <= now.getTime()) throw new KeyError(422, 'expiry_in_past', 'expiresAt must be in the future');
  const k = await newApiKey();
  const stored: StoredApiKey = { _id: k.keyId, hash: k.hash, salt: k.salt, role: req.role, ownerId: req.ownerId, label: req.label, createdAt: now, createdBy: actor, expiresAt: req.expiresAt, revokedAt: null, rotatedAt: null, previous: null };
  await deps.keys.insert(stored);
  await deps.events.storeAfterChange({ kind: 'key-created', actor, detail: { keyId: k.keyId, role: req.role, ownerId: req.ownerId, expiresAt: iso(req.expiresAt), label: req.label } });
  return { key: k.key, view: keyView(stored, now) };
}

async function existing(deps: KeyDeps, keyId: string): Promise<StoredApiKey> {
  const k = await deps.keys.get(keyId);
  if (!k) throw new KeyError(404, 'not_found', `no api key ${keyId}`);
  return k;
}

/** Tells every API replica to forget what it cached of the key (best effort: a replica that missed it re-checks, see Authenticator). */
async function publish(deps: KeyDeps, keyId: string): Promise<void> {
  await deps.publisher?.publish(deps.channel, keyId);
}

/** Revokes a key; revoking a revoked key answers it unchanged (the first revocation's time stands). */
export async function revokeKey(deps: KeyDeps, keyId: string, actor: string): Promise<KeyView> {
  await existing(deps, keyId);
  const now = deps.now();
  const changed = await deps.keys.revoke(keyId, now);
  // Published even when it was revoked already: a retry after a lost publish reaches the replicas.
  await publish(deps, keyId);
  if (changed) await deps.events.storeAfterChange({ kind: 'key-revoked', actor, detail: { keyId } });
  return keyView({ ...(await existing(deps, keyId)), lastUsedAt: await deps.keys.lastUsed(keyId) }, now);
}

/** A new secret for the key id; the old one stays valid for `graceMs` (the previous grace ends at once). */
export async function rotateKey(deps: KeyDeps, keyId: string, graceMs: number, actor: string): Promise<{ key: string; view: KeyView }> {
  const current = await existing(deps, keyId);
  const now = deps.now();
  if (keyState(current, now) !== 'active') throw new KeyError(409, 'key_not_active', `the key is ${keyState(current, now)}; only an active key can be rotated`);
  const next = await newApiKey(keyId);
  const graceUntil = new Date(now.getTime() + graceMs);
  if (!(await deps.keys.rotate(keyId, current, next, now, graceUntil))) {
    throw new KeyError(409, 'concurrent_change', 'the key was revoked or rotated at the same time; read it again');
  }
  await publish(deps, keyId);
  await deps.events.storeAfterChange({ kind: 'key-rotated', actor, detail: { keyId, previousValidUntil: graceUntil.toISOString() } });
  return { key: next.key, view: keyView({ ...(await existing(deps, keyId)), lastUsedAt: await deps.keys.lastUsed(keyId) }, now) };
}

export async function listKeys(deps: KeyDeps, filter: { ownerId?: string | undefined }, page: { afterId?: string | undefined; limit: number }) {
  const now = deps.now();
  const items = await deps.keys.list(filter, page);
  return { items: items.map((k) => keyView(k, now)), nextCursor: items.length === page.limit ? items[items.length - 1]!._id : null };
}
