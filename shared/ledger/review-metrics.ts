import { Counter, type Registry } from 'prom-client';

export type ReviewEvent = 'opened' | 'refreshed' | 'snoozed' | 'expired' | 'decided';

/** What happened to reviews in this process: opened, refreshed (found again), snoozed, expired, decided; by kind. */
export function reviewCounter(registry: Registry): (kind: string, event: ReviewEvent) => void {
  const counter = new Counter({ name: 'fleet_reviews_total', help: 'Review events in this process, by kind (fork, merge, reactivate) and event (opened, refreshed, snoozed, expired, decided)', labelNames: ['kind', 'event'] as const, registers: [registry] });
  return (kind, event) => counter.inc({ kind, event });
}
