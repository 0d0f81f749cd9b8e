import { Schema, type Connection } from 'mongoose';
import { URGENCIES, type Urgency, urgencyRank } from '../domain/consolidation.js';
import { Repository } from './model.js';

/**
 * A proposal waiting for an operator: a low-confidence fork decision, a consolidation opportunity
 * below the auto-execute bar, or an account a loss limit took out of trading (`reactivate`).
 * `decisionId` names the decision, opportunity or breach behind it (the newest one, when refreshed).
 */
export const REVIEW_KINDS = ['fork', 'merge', 'reactivate'] as const;
export type ReviewKind = (typeof REVIEW_KINDS)[number];
export const REVIEW_STATES = ['PENDING', 'APPROVED', 'REJECTED', 'EXPIRED'] as const;
export type ReviewState = (typeof REVIEW_STATES)[number];

export interface StoredReview {
  _id: string;
  kind: ReviewKind;
  accountId: string;
  ownerId: string | null;
  /** `<kind>:<accountId>`: at most one review per subject is PENDING. */
  subject: string;
  decisionId: string;
  forkId: string | null;
  urgency: Urgency;
  /** The urgency as a number, for ordering (critical first). */
  urgencyRank: number;
  state: ReviewState;
  createdAt: Date;
  /** When the condition was last found again and the review brought up to date (null: never). */
  refreshedAt: Date | null;
  refreshes: number;
  decidedAt: Date | null;
  decidedBy: string | null;
  note: string | null;
}

const reviewSchema = new Schema<StoredReview>(
  {
    _id: { type: String, required: true },
    kind: { type: String, required: true, enum: REVIEW_KINDS },
    accountId: { type: String, required: true },
    ownerId: { type: String, default: null },
    subject: { type: String, required: true },
    decisionId: { type: String, required: true },
    forkId: { type: String, default: null },
    urgency: { type: String, required: true, enum: URGENCIES },
    urgencyRank: { type: Number, required: true },
    state: { type: String, required: true, enum: REVIEW_STATES },
    createdAt: { type: Date, required: true },
    refreshedAt: { type: Date, default: null },
    refreshes: { type: Number, default: 0 },
    decidedAt: { type: Date, default: null },
    decidedBy: { type: String, default: null },
    note: { type: String, default: null },
  },
  { collection: 'reviews', versionKey: false, strict: 'throw', _id: false },
);
reviewSchema.index({ state: 1 });
reviewSchema.index({ subject: 1, state: 1 });

/** What filing a review did: opened one, refreshed the open one, or nothing (a rejection snoozes its subject). */
export type FileEvent = 'opened' | 'refreshed' | 'snoozed';

export interface ReviewRequest {
  kind: ReviewKind;
  accountId: string;
  ownerId: string | null;
  decisionId: string;
  forkId?: string | null;
  urgency: Urgency;
  /** The business date: a subject opens at most one review a day (a re-run of the day finds it). */
  day: string;
  now: Date;
  /** After a rejection, the subject is not filed again for this many days. */
  snoozeDays: number;
}

/** Reviews one subject may open in a day (each decided before the next): a bound, not a quota anyone meets. */
const SAME_DAY_REVIEWS_MAX = 20;

export const reviewSubject = (kind: ReviewKind, accountId: string) => `${kind}:${accountId}`;

export class ReviewRepository extends Repository<StoredReview> {
  constructor(connection: Connection) {
    super(connection, 'Review', reviewSchema);
  }

  /**
   * One open review per subject. The open one is refreshed with the newest decision and urgency (a
   * compare-and-set on PENDING: one decided meanwhile is not touched, and a new one opens). A new
   * review's id is the subject and the day, so two runs of one day's scan open one review between them.
   */
  async file(r: ReviewRequest): Promise<{ review: StoredReview | null; event: FileEvent }> {
    const subject = reviewSubject(r.kind, r.accountId);
    const rank = urgencyRank(r.urgency);
    const open = await this.model.findOne({ subject, state: 'PENDING' }).lean<StoredReview>();
    if (open) {
      const set = { decisionId: r.decisionId, forkId: r.forkId ?? null, urgency: r.urgency, urgencyRank: rank, refreshedAt: r.now };
      const res = await this.model.updateOne({ _id: open._id, state: 'PENDING' }, { $set: set, $inc: { refreshes: 1 } });
      if (res.modifiedCount === 1) return { review: { ...open, ...set, refreshes: open.refreshes + 1 }, event: 'refreshed' };
    }
    const since = new Date(r.now.getTime() - r.snoozeDays * 86_400_000);
    if (r.snoozeDays > 0 && (await this.model.exists({ subject, state: 'REJECTED', decidedAt: { $gt: since } }))) return { review: null, event: 'snoozed' };
    // The day's id, then `-2`, `-3`… when the day's review was already decided (approved or expired:
    // a new question the same day gets a review of its own). A rejected one snoozes the subject.
    for (let n = 1; n <= SAME_DAY_REVIEWS_MAX; n++) {
      const doc: StoredReview = {
        _id: `rev_${r.kind}_${r.accountId}_${r.day}${n === 1 ? '' : `-${n}`}`,
        kind: r.kind,
        accountId: r.accountId,
        ownerId: r.ownerId,
        subject,
        decisionId: r.decisionId,
        forkId: r.forkId ?? null,
        urgency: r.urgency,
        urgencyRank: rank,
        state: 'PENDING',
        createdAt: r.now,
        refreshedAt: null,
        refreshes: 0,
        decidedAt: null,
        decidedBy: null,
        note: null,
      };
      const { stored, created } = await this.insertOnce(doc, () => this.get(doc._id));
      if (created) return { review: stored, event: 'opened' };
      if (stored.state === 'PENDING') return this.file(r); // opened meanwhile by another run: refresh it
      if (stored.state === 'REJECTED' && r.snoozeDays > 0) return { review: null, event: 'snoozed' };
    }
    throw new Error(`review subject ${subject}: ${SAME_DAY_REVIEWS_MAX} reviews decided on ${r.day} already`);
  }

  /** The subject's open review, expired because its condition cleared; answers whether one was. */
  async expire(kind: ReviewKind, accountId: string, reason: string, now: Date): Promise<boolean> {
    const res = await this.model.updateOne({ subject: reviewSubject(kind, accountId), state: 'PENDING' }, { $set: { state: 'EXPIRED', decidedAt: now, decidedBy: 'system', note: reason } });
    return res.modifiedCount === 1;
  }

  async get(id: string): Promise<StoredReview | null> {
    return this.model.findById(id).lean<StoredReview>();
  }

  /** Which of the accounts have an open review of the kind (one query for a page of accounts). */
  async openAmong(kind: ReviewKind, accountIds: string[]): Promise<Set<string>> {
    if (accountIds.length === 0) return new Set();
    const open = await this.model.find({ subject: { $in: accountIds.map((id) => reviewSubject(kind, id)) }, state: 'PENDING' }, { accountId: 1 }).lean<Array<{ accountId: string }>>();
    return new Set(open.map((r) => r.accountId));
  }

  async openOf(kind: ReviewKind, accountId: string): Promise<StoredReview | null> {
    return this.model.findOne({ subject: reviewSubject(kind, accountId), state: 'PENDING' }).lean<StoredReview>();
  }

  /** Decides a pending review once; answers the review as it stands afterwards. */
  async decide(id: string, state: 'APPROVED' | 'REJECTED', by: string, note: string | null, now: Date): Promise<StoredReview | null> {
    await this.model.updateOne({ _id: id, state: 'PENDING' }, { $set: { state, decidedBy: by, decidedAt: now, note } });
    return this.get(id);
  }

  /** Most urgent first, then newest. */
  async list(filter: { state?: ReviewState | undefined; ownerId?: string | undefined }, limit: number): Promise<StoredReview[]> {
    const query: Record<string, unknown> = {};
    if (filter.state) query['state'] = filter.state;
    if (filter.ownerId !== undefined) query['ownerId'] = filter.ownerId;
    return this.model.find(query).sort({ urgencyRank: -1, createdAt: -1, _id: 1 }).limit(Math.min(limit, 500)).lean<StoredReview[]>();
  }

  /** Reviews by state, for the report and the gauges. */
  async countsByState(): Promise<Record<ReviewState, number>> {
    const counts = await Promise.all(REVIEW_STATES.map(async (s) => [s, await this.model.countDocuments({ state: s })] as const));
    return Object.fromEntries(counts) as Record<ReviewState, number>;
  }
}
