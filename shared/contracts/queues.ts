/**
 * Queue names are a wire contract between processes: renaming one strands its waiting jobs, so
 * they never change once deployed.
 */
export const QUEUE = {
  accountOps: 'account-ops',
  thresholdCheck: 'threshold-check',
  thresholdScan: 'threshold-scan',
  fork: 'fork',
  merge: 'merge',
  consolidationScan: 'consolidation-scan',
  snapshot: 'snapshot',
  retention: 'retention',
  alerts: 'alerts',
  webhooks: 'webhooks',
} as const;

export type QueueName = (typeof QUEUE)[keyof typeof QUEUE];
export const QUEUE_NAMES = Object.values(QUEUE) as [QueueName, ...QueueName[]];
