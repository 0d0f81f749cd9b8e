import { useState } from 'preact/hooks';
import { type Principal, atLeast, get } from '../api';
import { type Column, Table } from '../components/Table';
import { ErrorText, Time, Val } from '../components/Values';
import { accountHref, usePoll } from '../hooks';
import type { Alert } from '../types';

const POLL_MS = 5000;
const LIMIT = 200;
const ACCOUNT_ID = /^[A-Za-z0-9_-]{1,64}$/;
const RULE = /^[a-z0-9-]{1,64}$/;

const columns: Column<Alert>[] = [
  { header: 'Raised', cell: (a) => <Time iso={a.raisedAt} /> },
  { header: 'Severity', cell: (a) => <span class={`badge severity-${a.severity}`}>{a.severity}</span> },
  { header: 'Rule', cell: (a) => a.rule },
  { header: 'Account', cell: (a) => (a.accountId ? <a href={accountHref(a.accountId)}>{a.accountId}</a> : <span class="muted">fleet</span>) },
  { header: 'Period', cell: (a) => a.period },
  { header: 'Message', cell: (a) => a.message },
  { header: 'Details', cell: (a) => <Val v={a.details} /> },
];

/**
 * Alerts, newest first, filtered by the API by account and rule. Admins see the whole fleet; anyone
 * else asks per account (the API refuses fleet-wide alerts to them).
 */
export function AlertsPage({ principal }: { principal: Principal }) {
  const admin = atLeast(principal, 'admin');
  const [draft, setDraft] = useState('');
  const [accountId, setAccountId] = useState('');
  const [draftRule, setDraftRule] = useState('');
  const [rule, setRule] = useState('');
  const [seenRules, setSeenRules] = useState<string[]>([]);
  const [formError, setFormError] = useState<string | null>(null);
  const enabled = admin || accountId !== '';
  const alerts = usePoll(async () => (enabled ? get<{ items: Alert[] }>('/api/v1/alerts', { accountId, rule, limit: LIMIT }) : null), [accountId, rule], POLL_MS);

  const apply = (e: Event) => {
    e.preventDefault();
    const id = draft.trim();
    if (id && !ACCOUNT_ID.test(id)) return setFormError('An account id is 1 to 64 letters, digits, "_" or "-".');
    if (!id && !admin) return setFormError('Enter an account id: alerts are shown per account.');
    const r = draftRule.trim();
    if (r && !RULE.test(r)) return setFormError('A rule is 1 to 64 lower-case letters, digits or "-", such as drawdown.');
    setFormError(null);
    setAccountId(id);
    setRule(r);
  };

  const shown = alerts.data?.items ?? [];
  // Rules seen so far, offered as suggestions for the rule filter.
  const rules = [...new Set([...seenRules, ...shown.map((a) => a.rule)])].sort();
  if (rules.length !== seenRules.length) setSeenRules(rules);
  return (
    <>
      <h1 tabIndex={-1}>Alerts</h1>
      <form class="filters" onSubmit={apply}>
        <div class="field">
          <label for="alerts-account">Account id</label>
          <input id="alerts-account" value={draft} onInput={(e) => setDraft(e.currentTarget.value)} placeholder={admin ? 'all accounts' : ''} autocomplete="off" spellcheck={false} />
        </div>
        <div class="field">
          <label for="alerts-rule">Rule</label>
          <input id="alerts-rule" list="alerts-rules" value={draftRule} onInput={(e) => setDraftRule(e.currentTarget.value)} placeholder="all rules" autocomplete="off" spellcheck={false} />
          <datalist id="alerts-rules">
            {rules.map((r) => (
              <option key={r} value={r} />
            ))}
          </datalist>
        </div>
        <button type="submit">Show</button>
      </form>
      <ErrorText error={formError ?? alerts.error} />
      {!enabled ? (
        <p>Enter an account id to see its alerts.</p>
      ) : alerts.data === null ? (
        !alerts.error && <p class="muted">Loading…</p>
      ) : (
        <>
          <p class="muted">
            {shown.length} alert{shown.length === 1 ? '' : 's'} {accountId ? `of ${accountId}` : 'in the fleet'}
            {rule ? `, rule ${rule}` : ''} (the newest {LIMIT} at most).
          </p>
          <Table label="Alerts" columns={columns} rows={shown} rowKey={(a) => `${a.accountId ?? ''}|${a.rule}|${a.period}`} empty="No alerts." />
        </>
      )}
    </>
  );
}
