import { Schema, type Connection } from 'mongoose';
import type { Role } from '../auth/api-keys.js';
import { Repository, modelOn } from './model.js';

/** The secret a rotation replaced, still accepted until `validUntil` (the rotation's grace period). */
export interface PreviousSecret {
  hash: string;
  salt: string;
  validUntil: Date;
}

export interface StoredApiKey {
  _id: string;
  hash: string;
  salt: string;
  role: Role;
  /** Accounts of this owner are the key's scope; null for admin keys. */
  ownerId: string | null;
  label: string | null;
  createdAt: Date;
  createdBy: string | null;
  expiresAt: Date | null;
  revokedAt: Date | null;
  rotatedAt: Date | null;
  previous: PreviousSecret | null;
}

const apiKeySchema = new Schema<StoredApiKey>(
  {
    _id: { type: String, required: true },
    hash: { type: String, required: true },
    salt: { type: String, required: true },
    role: { type: String, required: true, enum: ['viewer', 'operator', 'admin'] },
    ownerId: { type: String, default: null },
    label: { type: String, default: null },
    createdAt: { type: Date, required: true },
    createdBy: { type: String, default: null },
    expiresAt: { type: Date, default: null },
    revokedAt: { type: Date, default: null },
    rotatedAt: { type: Date, default: null },
    previous: { type: new Schema<PreviousSecret>({ hash: String, salt: String, validUntil: Date }, { _id: false }), default: null },
  },
  { collection: 'apiKeys', versionKey: false, strict: 'throw', _id: false },
);

/**
 * When each key was last used, apart from the key itself: a use is recorded by every API replica at
 * most once a minute, and on FerretDB an update rewrites the whole document, so a use written into the
 * key document could write back a revocation made in between.
 */
const usageSchema = new Schema<{ _id: string; lastUsedAt: Date }>(
  { _id: { type: String, required: true }, lastUsedAt: { type: Date, required: true } },
  { collection: 'apiKeyUsage', versionKey: false, strict: 'throw', _id: false },
);

/** Keys stored before the lifecycle fields existed read as never expiring, never rotated. */
const LIFECYCLE_DEFAULTS = { label: null, createdBy: null, expiresAt: null, revokedAt: null, rotatedAt: null, previous: null } as const;
const withDefaults = (k: StoredApiKey): StoredApiKey => {
  const out = { ...k };
  for (const [field, value] of Object.entries(LIFECYCLE_DEFAULTS)) (out as Record<string, unknown>)[field] ??= value;
  return out;
};

export class ApiKeyRepository extends Repository<StoredApiKey> {
  private readonly usage;

  constructor(connection: Connection) {
    super(connection, 'ApiKey', apiKeySchema);
    this.usage = modelOn(connection, 'ApiKeyUsage', usageSchema);
  }

  async insert(k: StoredApiKey): Promise<void> {
    await this.model.create(k);
  }

  async get(keyId: string): Promise<StoredApiKey | null> {
    const k = await this.model.findById(keyId).lean<StoredApiKey>();
    return k ? withDefaults(k) : null;
  }

  /** A page of keys in id order, with when each was last used. */
  async list(filter: { ownerId?: string | undefined }, page: { afterId?: string | undefined; limit: number }): Promise<Array<StoredApiKey & { lastUsedAt: Date | null }>> {
    const query: Record<string, unknown> = {};
    if (filter.ownerId !== undefined) query['ownerId'] = filter.ownerId;
    if (page.afterId) query['_id'] = { $gt: page.afterId };
    const keys = (await this.model.find(query).sort({ _id: 1 }).limit(page.limit).lean<StoredApiKey[]>()).map(withDefaults);
    const used = new Map((await this.usage.find({ _id: { $in: keys.map((k) => k._id) } }).lean()).map((u) => [u._id, u.lastUsedAt]));
    return keys.map((k) => ({ ...k, lastUsedAt: used.get(k._id) ?? null }));
  }

  async lastUsed(keyId: string): Promise<Date | null> {
    return (await this.usage.findById(keyId).lean())?.lastUsedAt ?? null;
  }

  async touch(keyId: string, at: Date): Promise<void> {
    await this.usage.updateOne({ _id: keyId }, { $max: { lastUsedAt: at } }, { upsert: true });
  }

  /** Revokes a live key; false when it was revoked already (the first revocation stands). */
  revoke(keyId: string, at: Date): Promise<boolean> {
    return this.updateLocked(keyId, { revokedAt: null }, { $set: { revokedAt: at } });
  }

  /**
   * Replaces the secret, keeping the one it replaces valid until `graceUntil`. Conditional on the
   * secret the caller read, so of two rotations at once one wins and the other is told it lost.
   */
  rotate(keyId: string, current: { hash: string; salt: string }, next: { hash: string; salt: string }, at: Date, graceUntil: Date): Promise<boolean> {
    return this.updateLocked(
      keyId,
      { revokedAt: null, hash: current.hash },
      { $set: { hash: next.hash, salt: next.salt, rotatedAt: at, previous: { hash: current.hash, salt: current.salt, validUntil: graceUntil } } },
    );
  }

  override async init(): Promise<void> {
    await Promise.all([super.init(), this.usage.createIndexes()]);
  }
}
