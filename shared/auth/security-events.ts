import { randomUUID } from 'node:crypto';
import { Counter, type Registry } from 'prom-client';
import type { AuditRepository } from '../db/audit-repository.js';
import type { Logger } from '../runtime/logger.js';

/** The audit chain security events join: apart from every account's chain, verified with them. */
export const SECURITY_CHAIN = 'security';

export const SECURITY_EVENT_KINDS = ['auth-failure', 'auth-throttled', 'role-refused', 'key-created', 'key-revoked', 'key-rotated'] as const;
export type SecurityEventKind = (typeof SECURITY_EVENT_KINDS)[number];

export interface SecurityEvent {
  kind: SecurityEventKind;
  /** Who: the key id that was presented or acted, or 'anonymous'. */
  actor: string;
  detail: Record<string, unknown>;
}

/**
 * Authentication failures come in floods, so recording one must never hold a request up or grow
 * without bound: events are appended in the background, at most `pendingMax` at a time, and the
 * rest are counted as dropped (the throttle already keeps a single client's share small).
 */
const PENDING_MAX = 100;

export class SecurityEvents {
  private pending = 0;
  private readonly recorded: Counter<'kind'>;
  private readonly dropped: Counter<'kind'>;

  constructor(
    private readonly audit: AuditRepository,
    private readonly now: () => Date,
    private readonly logger: Logger,
    registry: Registry,
    private readonly pendingMax = PENDING_MAX,
  ) {
    this.recorded = new Counter({ name: 'fleet_security_events_total', help: 'Security events stored in the security audit chain, by kind', labelNames: ['kind'], registers: [registry] });
    this.dropped = new Counter({ name: 'fleet_security_events_dropped_total', help: 'Security events not stored because too many were being written at once, by kind', labelNames: ['kind'], registers: [registry] });
  }

  /** Stores the event in the background (a failed request's answer does not wait for it). */
  record(event: SecurityEvent): void {
    if (this.pending >= this.pendingMax) {
      this.dropped.inc({ kind: event.kind });
      return;
    }
    this.pending++;
    this.store(event)
      .catch((err: unknown) => this.logger.warn({ err, kind: event.kind }, 'security event not stored'))
      .finally(() => this.pending--);
  }

  /**
   * Stores the event and waits for it (key changes are rare and their record matters), but never
   * fails the change it records: the change is made already, and a caller who saw an error would
   * make it again (a rotation's new secret would be lost). A record that could not be written is
   * logged and counted as dropped.
   */
  async storeAfterChange(event: SecurityEvent): Promise<void> {
    await this.store(event).catch((err: unknown) => {
      this.dropped.inc({ kind: event.kind });
      this.logger.error({ err, kind: event.kind, detail: event.detail }, 'security event of a key change not stored');
    });
  }

  private async store(event: SecurityEvent): Promise<void> {
    await this.audit.append(
      { chain: SECURITY_CHAIN, ref: `${event.kind}:${randomUUID()}`, actor: event.actor, action: event.kind, jobId: null, before: null, after: event.detail, outcome: event.kind === 'key-created' || event.kind === 'key-revoked' || event.kind === 'key-rotated' ? 'applied' : 'refused' },
      this.now(),
    );
    this.recorded.inc({ kind: event.kind });
  }

  /** Background writes still running (tests and shutdown wait for them). */
  get inFlight(): number {
    return this.pending;
  }
}
