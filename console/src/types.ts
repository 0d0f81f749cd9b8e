/** The API's response shapes the console reads (from services/api/schemas.ts); money is decimal strings. */

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export interface Review {
  id: string;
  kind: string;
  accountId: string;
  state: string;
  forkId: string | null;
  decisionId?: string;
  urgency?: string;
  createdAt?: string;
  refreshedAt?: string | null;
  [k: string]: unknown;
}
/** GET /api/v1/reviews/:id: the review with what is behind it (a fork decision, a merge opportunity, a breach). */
export interface ReviewDetail extends Review {
  decision?: Record<string, unknown> | null;
}

export interface Fork {
  id: string;
  parentId: string;
  childId: string | null;
  state: string;
  mode: string;
  requestedAt: string;
  startedAt: string | null;
  completedAt: string | null;
  error: { code: string; message: string } | null;
}
export interface Merge {
  id: string;
  groupId: string | null;
  sourceId: string;
  targetId: string;
  strategy: string;
  state: string;
  requestedAt: string;
  scheduledFor: string | null;
  startedAt: string | null;
  completedAt: string | null;
  error: { code: string; message: string } | null;
}
/** Phases a saga does not leave (FORK_DONE, MERGE_DONE): no resume or abort for these. */
export const SAGA_DONE = ['COMPLETED', 'ROLLED_BACK', 'REJECTED'];

export interface Alert {
  rule: string;
  severity: string;
  accountId: string | null;
  period: string;
  message: string;
  details: Record<string, unknown>;
  raisedAt: string;
}

export interface Position {
  symbol: string;
  quantity: string;
  costBasis: string;
  marketValue: string;
}
export interface Account {
  id: string;
  type: string;
  state: string;
  name: string;
  ownerId: string | null;
  parentId: string | null;
  mergedInto: string | null;
  cash: string;
  reservedCash: string;
  availableCash: string;
  positionsValue: string;
  equity: string;
  positions: Position[];
  seq: number;
  createdAt: string;
  updatedAt: string;
}
export interface Page<T, C = string> {
  items: T[];
  nextCursor: C | null;
}
export interface Entry {
  seq: number;
  kind: string;
  at: string;
  actor: string;
  details: Record<string, string | boolean>;
  realisedPnl: string;
  cash: string;
  reservedCash: string;
  state: string;
}
export interface HierarchyNode {
  id: string;
  parentId: string | null;
  depth: number;
  type: string;
  state: string;
  name: string;
}
export interface Hierarchy {
  ancestors: Array<{ id: string; type: string; name: string }>;
  nodes: HierarchyNode[];
  truncated: boolean;
}
export const PERIODS = ['day', 'week', 'month', 'quarter', 'year', 'inception'] as const;
export type Period = (typeof PERIODS)[number];
export interface PerformanceReport {
  accountId: string;
  period: Period;
  from: string | null;
  to: string | null;
  points: number;
  startEquity: string | null;
  endEquity: string | null;
  metrics: Record<string, unknown>;
  benchmark: Record<string, unknown>;
  moneyWeightedReturn: number | null;
  [k: string]: unknown;
}
/** GET /api/v1/performance/snapshots: one point a day. */
export interface Snapshot {
  date: string;
  equity: string;
  cash: string;
  positionsValue: string;
  netFlow: string;
  dailyReturn: number | null;
}

export interface DeadLetter {
  id: string;
  queue: string;
  jobId: string;
  name: string;
  failedReason: string;
  reason: string;
  attemptsMade: number;
  failedAt: string;
  recordedAt: string;
  state: 'open' | 'replayed' | 'discarded';
  stateAt: string | null;
  stateBy: string | null;
  discardReason: string | null;
  replayCount: number;
}
