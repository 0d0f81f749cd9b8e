import { Schema, type Connection } from 'mongoose';
import type { JobData } from '../contracts/jobs.js';
import { Repository } from './model.js';

export type AlertInput = JobData<'alerts', 'raise'>;
export interface StoredAlert extends AlertInput {
  raisedAt: Date;
}

const alertSchema = new Schema<StoredAlert>(
  {
    rule: { type: String, required: true },
    severity: { type: String, required: true, enum: ['info', 'warning', 'critical'] },
    accountId: { type: String, default: null },
    period: { type: String, required: true },
    message: { type: String, required: true },
    details: { type: Schema.Types.Mixed, default: {} },
    raisedAt: { type: Date, required: true },
  },
  { collection: 'alerts', versionKey: false, strict: 'throw', minimize: false },
);
// SPEC §7.4: one alert per (account, rule, period); a repeat is the same alert, not a new one.
alertSchema.index({ accountId: 1, rule: 1, period: 1 }, { unique: true });
alertSchema.index({ raisedAt: -1 });

export class AlertRepository extends Repository<StoredAlert> {
  constructor(connection: Connection) {
    super(connection, 'Alert', alertSchema);
  }

  /** Stores the alert once; answers whether this call was the one that stored it. */
  async raise(alert: AlertInput, raisedAt: Date): Promise<{ created: boolean }> {
    const { created } = await this.insertOnce({ ...alert, raisedAt }, async () => null);
    return { created };
  }

  /** Newest first: of one account, of some accounts (an owner's), or (neither given) of the whole fleet. */
  async list(opts: { limit: number; accountId?: string; accountIds?: string[]; rule?: string }): Promise<StoredAlert[]> {
    const filter = {
      ...(opts.accountId ? { accountId: opts.accountId } : opts.accountIds ? { accountId: { $in: opts.accountIds } } : {}),
      ...(opts.rule ? { rule: opts.rule } : {}),
    };
    return this.model.find(filter, { _id: 0 }).sort({ raisedAt: -1 }).limit(Math.min(opts.limit, 1000)).lean<StoredAlert[]>();
  }
}
