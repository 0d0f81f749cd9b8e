import { Gauge, type Registry } from 'prom-client';
import type { LedgerDeps } from '../../shared/ledger/post.js';
import { resumeTransfer } from '../../shared/ledger/transfer.js';
import { type Checkpoint, verifyLedger } from '../../shared/ledger/verify.js';
import type { Logger } from '../../shared/runtime/logger.js';

const RECOVER_BATCH_MAX = 100;

/**
 * Finishes transfers left in an open phase (their job died or was lost): each is driven to POSTED or
 * VOIDED through the same keyed steps, deciding from the journal, so a job still running alongside
 * cannot make it go both ways.
 */
export async function recoverTransfers(deps: LedgerDeps, olderThanSec: number, jobId: string | null, logger: Logger) {
  const before = new Date(deps.clock.now().getTime() - olderThanSec * 1000);
  const stuck = await deps.stores.transfers.stuck(before, RECOVER_BATCH_MAX);
  const settled: Array<{ transferId: string; outcome: string }> = [];
  for (const t of stuck) {
    const outcome = await resumeTransfer(deps, t, jobId);
    settled.push({ transferId: t._id, outcome: outcome.status });
    logger.warn({ transferId: t._id, from: t.phase, outcome: outcome.status }, 'recovered a stuck transfer');
  }
  return { recovered: settled.length, settled };
}

export function createReconcileGauges(registry: Registry) {
  const gauge = (name: string, help: string) => new Gauge({ name, help, registers: [registry] });
  return {
    drift: gauge('fleet_ledger_drift_accounts', 'Accounts whose projection differed from the journal head at the last reconcile (repaired)'),
    violations: gauge('fleet_ledger_violations', 'Ledger invariant violations found by the last reconcile; must stay 0'),
    auditBreaks: gauge('fleet_audit_chain_breaks', 'Audit hash chains found broken by the last reconcile; must stay 0'),
    openTransfers: gauge('fleet_transfers_open', 'Transfers in an open phase at the last reconcile'),
    sagaConservation: gauge('fleet_saga_conservation_violations', 'Forks, merges and transfers that ended with moved-in different from moved-out at the last reconcile; must stay 0'),
    lastRun: gauge('fleet_reconcile_last_run_timestamp_seconds', 'When the reconciler last finished'),
  };
}

/**
 * The reconciler: recomputes balances from the journal, checks every invariant (fleet-wide
 * conservation of every saga included, whether or not the fleet is idle), repairs stale projections
 * and exports what it found.
 */
export async function reconcile(deps: LedgerDeps, gauges: ReturnType<typeof createReconcileGauges>, logger: Logger, from?: Map<string, Checkpoint>) {
  const report = await verifyLedger(deps.stores, { idle: false, repairProjections: true, now: deps.clock.now(), today: deps.clock.today(), config: deps.config, ...(from ? { from } : {}) });
  gauges.drift.set(report.driftAccounts);
  gauges.violations.set(report.violations);
  gauges.auditBreaks.set(report.audit.breaks.length);
  gauges.openTransfers.set(report.openTransfers);
  gauges.sagaConservation.set(report.sagaConservationViolations);
  gauges.lastRun.set(Date.now() / 1000);
  const summary = { accounts: report.accounts, entries: report.entries, drift: report.driftAccounts, violations: report.violations, sagaConservation: report.sagaConservationViolations, auditBreaks: report.audit.breaks.length };
  if (report.violations > 0 || report.audit.breaks.length > 0) logger.error({ ...summary, problems: report.problems.slice(0, 10) }, 'reconcile found ledger problems');
  else logger.info(summary, 'reconcile clean');
  return summary;
}
