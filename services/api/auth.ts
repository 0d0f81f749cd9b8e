import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { type Role, parseApiKey, secretMatches } from '../../shared/auth/api-keys.js';
import type { ApiKeyRepository } from '../../shared/db/api-key-repository.js';
import { ApiError } from './errors.js';

export interface Principal {
  /** The key id (never the key), or 'admin-env' for ADMIN_API_KEY: what audit records name as actor. */
  id: string;
  role: Role;
  ownerId: string | null;
}

const RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };
/** Verified keys are remembered briefly so the slow KDF runs once per key, not per request. */
const CACHE_TTL_MS = 60_000;
const CACHE_ENTRIES_MAX = 10_000;

const digest = (s: string) => createHash('sha256').update(s).digest();

export class Authenticator {
  private readonly adminDigest: Buffer | null;
  private readonly cache = new Map<string, { principal: Principal; until: number }>();

  constructor(
    private readonly keys: ApiKeyRepository,
    adminApiKey: string | null,
  ) {
    this.adminDigest = adminApiKey ? digest(adminApiKey) : null;
  }

  /** The caller of a request, from `Authorization: Bearer <key>`; 401 when absent or wrong. */
  async authenticate(req: FastifyRequest): Promise<Principal> {
    const header = req.headers.authorization;
    const key = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
    if (!key) throw new ApiError(401, 'unauthenticated', 'send Authorization: Bearer <api key>');
    const keyDigest = digest(key);
    if (this.adminDigest && timingSafeEqual(keyDigest, this.adminDigest)) return { id: 'admin-env', role: 'admin', ownerId: null };

    const cacheKey = keyDigest.toString('hex');
    const cached = this.cache.get(cacheKey);
    if (cached && cached.until > Date.now()) return cached.principal;

    const parsed = parseApiKey(key);
    const stored = parsed ? await this.keys.get(parsed.keyId) : null;
    if (!parsed || !stored || stored.revokedAt || !(await secretMatches(parsed.secret, stored.salt, stored.hash))) {
      throw new ApiError(401, 'unauthenticated', 'unknown or revoked api key');
    }
    const principal: Principal = { id: stored._id, role: stored.role, ownerId: stored.ownerId };
    if (this.cache.size >= CACHE_ENTRIES_MAX) this.cache.clear();
    this.cache.set(cacheKey, { principal, until: Date.now() + CACHE_TTL_MS });
    return principal;
  }
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
  if (!account || (p.role !== 'admin' && account.ownerId !== p.ownerId)) {
    throw new ApiError(404, 'not_found', 'no such account');
  }
}
