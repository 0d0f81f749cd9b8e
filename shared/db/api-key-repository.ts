import { Schema, type Connection } from 'mongoose';
import type { Role } from '../auth/api-keys.js';
import { Repository } from './model.js';

export interface StoredApiKey {
  _id: string;
  hash: string;
  salt: string;
  role: Role;
  /** Accounts of this owner are the key's scope; null for admin keys. */
  ownerId: string | null;
  createdAt: Date;
  revokedAt: Date | null;
}

const apiKeySchema = new Schema<StoredApiKey>(
  {
    _id: { type: String, required: true },
    hash: { type: String, required: true },
    salt: { type: String, required: true },
    role: { type: String, required: true, enum: ['viewer', 'operator', 'admin'] },
    ownerId: { type: String, default: null },
    createdAt: { type: Date, required: true },
    revokedAt: { type: Date, default: null },
  },
  { collection: 'apiKeys', versionKey: false, strict: 'throw', _id: false },
);

export class ApiKeyRepository extends Repository<StoredApiKey> {
  constructor(connection: Connection) {
    super(connection, 'ApiKey', apiKeySchema);
  }

  async insert(k: StoredApiKey): Promise<void> {
    await this.model.create(k);
  }

  async get(keyId: string): Promise<StoredApiKey | null> {
    return this.model.findById(keyId).lean<StoredApiKey>();
  }
}
