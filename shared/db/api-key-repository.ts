import { Schema, type Connection, type Model } from 'mongoose';
import type { Role } from '../auth/api-keys.js';
import { modelOn } from './model.js';

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

export class ApiKeyRepository {
  readonly model: Model<StoredApiKey>;

  constructor(connection: Connection) {
    this.model = modelOn<StoredApiKey>(connection, 'ApiKey', apiKeySchema);
  }

  async init(): Promise<void> {
    await this.model.createIndexes();
  }

  async insert(k: StoredApiKey): Promise<void> {
    await this.model.create(k);
  }

  async get(keyId: string): Promise<StoredApiKey | null> {
    return this.model.findById(keyId).lean<StoredApiKey>();
  }
}
