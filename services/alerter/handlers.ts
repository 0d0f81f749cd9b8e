import { Counter, type Registry } from 'prom-client';
import type { AlertRepository } from '../../shared/db/alert-repository.js';
import type { Handlers } from '../../shared/queue/worker-runner.js';

export function createAlertCounter(registry: Registry) {
  return new Counter({
    name: 'fleet_alerts_total',
    help: 'Alerts raised (deduplicated per account, rule and period), by rule and severity',
    labelNames: ['rule', 'severity'] as const,
    registers: [registry],
  });
}

/** Stores each alert once per (account, rule, period); a replayed job finds it stored and does nothing. */
export function alerterHandlers(deps: {
  alerts: AlertRepository;
  raised: Counter<'rule' | 'severity'>;
  now: () => Date;
}): Handlers<'alerts'> {
  return {
    raise: async (alert, { logger }) => {
      const { created } = await deps.alerts.raise(alert, deps.now());
      if (created) {
        deps.raised.inc({ rule: alert.rule, severity: alert.severity });
        logger[alert.severity === 'critical' ? 'error' : 'warn']({ alert }, `alert: ${alert.message}`);
      }
      return { created };
    },
  };
}
