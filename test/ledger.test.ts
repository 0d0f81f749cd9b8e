import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FollowUps } from '../shared/queue/follow-ups.js';
import { loadBalances } from '../shared/db/stored-balances.js';
import { Decimal } from '../shared/money/decimal.js';
import { verifyLedger } from '../shared/ledger/verify.js';
import { ReviewRepository } from '../shared/db/review-repository.js';
import { type LedgerHarness, openAccount, startLedger } from './helpers/ledger-harness.js';

let h: LedgerHarness;
beforeAll(async () => {
  h = await startLedger('ledger', { replicas: 2, env: { FLEET__QUEUES__ACCOUNT_OPS__WORKER_CONCURRENCY: '16' } });
});
afterAll(async () => h?.close());

const cashOf = async (accountId: string) => loadBalances((await h.stores.journal.head(accountId))!.after).cash;

describe('the ledger through the account-ops worker', () => {
  it('applies 200 concurrent deposits exactly once despite 200 replays', async () => {
    await openAccount(h, 'acc-deposits');
    const amounts = Array.from({ length: 200 }, (_, i) => `${(i % 97) + 1}.${String(i % 100).padStart(2, '0')}`);
    const expected = amounts.reduce((s, a) => s.plus(a), new Decimal(0));
    const deposit = (i: number, replay: boolean) =>
      h.run('deposit', { accountId: 'acc-deposits', idempotencyKey: `dep-${i}-key`, actor: 'test', amount: amounts[i] }, `dep-${i}-${replay ? 'replay' : 'first'}`);
    // Replays use other job ids, so BullMQ cannot dedupe them: only the ledger's keys can.
    const outcomes = await Promise.all(amounts.flatMap((_, i) => [deposit(i, false), deposit(i, true)]));
    expect(outcomes.every((o) => o.status === 'applied')).toBe(true);
    expect((await cashOf('acc-deposits')).toFixed(2)).toBe(expected.toFixed(2));
    const head = await h.stores.journal.head('acc-deposits');
    expect(head!.seq).toBe(201); // open + 200 deposits, no gaps, no doubles
    // A replay answers the first outcome, entry and all.
    const first = outcomes[0]!;
    const replay = outcomes[1]!;
    expect(replay).toEqual(first);
  });

  it('never overdraws under concurrent withdrawals', async () => {
    await openAccount(h, 'acc-withdraw', '15000.00');
    const outcomes = await Promise.all(
      Array.from({ length: 30 }, (_, i) => h.run('withdrawal', { accountId: 'acc-withdraw', idempotencyKey: `wd-${i}-key`, actor: 'test', amount: '1000.00' })),
    );
    const applied = outcomes.filter((o) => o.status === 'applied').length;
    const refused = outcomes.filter((o) => o.status === 'refused');
    // GEN keeps its 10,000.00 minimum: exactly five withdrawals fit.
    expect(applied).toBe(5);
    expect(refused.every((o) => o.status === 'refused' && o.code === 'min_capital')).toBe(true);
    expect((await cashOf('acc-withdraw')).toFixed(2)).toBe('10000.00');
  });

  it('refuses a key reused with a different payload and keeps the first outcome', async () => {
    await openAccount(h, 'acc-reuse', '10000.00');
    const first = await h.run('deposit', { accountId: 'acc-reuse', idempotencyKey: 'same-key-1', actor: 'test', amount: '1.00' }, 'reuse-a');
    const second = await h.run('deposit', { accountId: 'acc-reuse', idempotencyKey: 'same-key-1', actor: 'test', amount: '2.00' }, 'reuse-b');
    const third = await h.run('withdrawal', { accountId: 'acc-reuse', idempotencyKey: 'same-key-1', actor: 'test', amount: '1.00' }, 'reuse-c');
    expect(first.status).toBe('applied');
    expect(second).toMatchObject({ status: 'refused', code: 'idempotency_key_reused', httpStatus: 409 });
    expect(third).toMatchObject({ status: 'refused', code: 'idempotency_key_reused' });
    expect((await cashOf('acc-reuse')).toFixed(2)).toBe('10001.00');
  });

  it('keeps a refusal as the outcome of its key, so a retry cannot flip it', async () => {
    await openAccount(h, 'acc-refusal', '10000.00');
    const refused = await h.run('withdrawal', { accountId: 'acc-refusal', idempotencyKey: 'wd-too-much', actor: 'test', amount: '500.00' }, 'flip-a');
    expect(refused).toMatchObject({ status: 'refused', code: 'min_capital' });
    await h.run('deposit', { accountId: 'acc-refusal', idempotencyKey: 'dep-more-cash', actor: 'test', amount: '5000.00' });
    const retried = await h.run('withdrawal', { accountId: 'acc-refusal', idempotencyKey: 'wd-too-much', actor: 'test', amount: '500.00' }, 'flip-b');
    expect(retried).toEqual(refused);
  });

  it('moves money both ways between accounts under concurrency and conserves it', async () => {
    await openAccount(h, 'acc-x', '50000.00');
    await openAccount(h, 'acc-y', '50000.00');
    const transfers = Array.from({ length: 40 }, (_, i) =>
      h.run('transfer', {
        accountId: i % 2 ? 'acc-x' : 'acc-y',
        toAccountId: i % 2 ? 'acc-y' : 'acc-x',
        idempotencyKey: `xfer-${i}-key`,
        actor: 'test',
        amount: `${100 + i}.25`,
      }),
    );
    const outcomes = await Promise.all(transfers);
    expect(outcomes.every((o) => o.status === 'applied')).toBe(true);
    const total = (await cashOf('acc-x')).plus(await cashOf('acc-y'));
    expect(total.toFixed(2)).toBe('100000.00');
    expect(await h.stores.transfers.countOpen()).toBe(0);
  });

  it('voids a transfer the source cannot fund or the destination cannot take, leaving nothing held', async () => {
    await openAccount(h, 'acc-poor', '10000.00');
    await openAccount(h, 'acc-closed', '0.01');
    await h.run('withdrawal', { accountId: 'acc-closed', idempotencyKey: 'close-it-now', actor: 'test', amount: '0.01', close: true });
    const tooMuch = await h.run('transfer', { accountId: 'acc-poor', toAccountId: 'acc-x', idempotencyKey: 'xfer-poor-1', actor: 'test', amount: '10000.01' });
    const toClosed = await h.run('transfer', { accountId: 'acc-poor', toAccountId: 'acc-closed', idempotencyKey: 'xfer-closed-1', actor: 'test', amount: '1.00' });
    expect(tooMuch).toMatchObject({ status: 'refused', code: 'insufficient_funds' });
    expect(toClosed).toMatchObject({ status: 'refused', code: 'invalid_state' });
    const head = loadBalances((await h.stores.journal.head('acc-poor'))!.after);
    expect([head.cash.toFixed(2), head.reserved.toFixed(2)]).toEqual(['10000.00', '0.00']);
  });

  it('trades at the last close when no price is given, and refuses when there is none', async () => {
    await openAccount(h, 'acc-trader', '100000.00');
    await h.stores.prices.upsert([
      { symbol: 'SPY', date: '2020-01-02', close: new Decimal('300.00') },
      { symbol: 'SPY', date: '2020-01-03', close: new Decimal('301.123456') },
    ]);
    const bought = await h.run('trade', { accountId: 'acc-trader', idempotencyKey: 'buy-spy-1', actor: 'test', side: 'buy', symbol: 'SPY', quantity: '10' });
    expect(bought).toMatchObject({ status: 'applied', entry: { details: { price: '301.123456' }, cash: '96988.77' } });
    const noPrice = await h.run('trade', { accountId: 'acc-trader', idempotencyKey: 'buy-zzz-1', actor: 'test', side: 'buy', symbol: 'ZZZ', quantity: '1' });
    expect(noPrice).toMatchObject({ status: 'refused', code: 'no_price' });
  });

  it('reconciles: repairs a stale projection, reports it as drift, and exports clean gauges', async () => {
    await h.stores.accounts.model.updateOne({ _id: 'acc-x' }, { $set: { headSeq: 2 } });
    const outcome = await h.run('reconcile', { period: 'test' });
    expect(outcome).toMatchObject({ drift: 1, violations: 0, auditBreaks: 0 });
    // Whichever replica ran the job exports its gauges; the other one never reconciled.
    const metrics = (await Promise.all(h.registries.map((r) => r.metrics()))).join('\n');
    expect(metrics).toMatch(/^fleet_ledger_violations 0$/m);
    expect(metrics).toMatch(/^fleet_ledger_drift_accounts 1$/m);
    const repaired = await h.stores.accounts.get('acc-x');
    expect(repaired!.headSeq).toBe((await h.stores.journal.head('acc-x'))!.seq);
  });

  it('enqueues a fork check for an entry at or over the fork line only, and an alert when an account goes into ERROR', async () => {
    const { afterPosting } = await import('../services/account-ops/after-posting.js');
    h.deps.afterPosting = afterPosting(new FollowUps(h.producer), h.deps);
    await openAccount(h, 'acc-error', '10000.00');
    const out = await h.run('state-change', { accountId: 'acc-error', idempotencyKey: 'to-error-1', actor: 'test', to: 'ERROR', reason: 'broker reconciliation mismatch' });
    await openAccount(h, 'acc-at-line', '110000.00');
    h.deps.afterPosting = undefined;
    expect(out).toMatchObject({ status: 'applied', entry: { state: 'ERROR' } });
    const seq = (out as { seq: number }).seq;
    expect(await h.producer.queue('threshold-check').getJob(`threshold.acc-error.${seq}`)).toBeUndefined();
    expect((await h.producer.queue('threshold-check').getJob('threshold.acc-at-line.1'))?.data).toEqual({ accountId: 'acc-at-line', seq: 1 });
    expect((await h.producer.queue('alerts').getJob(`alert.account-error.acc-error.${seq}`))?.data).toMatchObject({ rule: 'account-error', severity: 'critical', accountId: 'acc-error' });
  });

  it('passes verify: gap-free journals that follow entry by entry, money conserved, nothing held, audit intact', async () => {
    const report = await verifyLedger(h.stores, { idle: true });
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.accounts).toBeGreaterThanOrEqual(9);
    // Every entry is sealed in its account's hash chain (the journal is the audit trail of money).
    expect(report.entries).toBeGreaterThan(200);
  });
});

describe('a loss limit\'s state change', () => {
  const breach = (accountId: string, key: string, to: 'SAFE' | 'SUSPENDED', id?: string) =>
    h.run('limit-breach', { accountId, idempotencyKey: key, actor: 'risk-limits', to, rule: 'drawdown', period: '2026-11', reason: '17.00 % below its high-water mark' }, id);
  const stateOf = async (accountId: string) => loadBalances((await h.stores.journal.head(accountId))!.after).state;

  it('takes an ACTIVE account out of trading once, however often it runs', async () => {
    await openAccount(h, 'acc-limit-a');
    const runs = await Promise.all([breach('acc-limit-a', 'limit-drawdown-2026-11', 'SAFE', 'lb-1'), breach('acc-limit-a', 'limit-drawdown-2026-11', 'SAFE', 'lb-2')]);
    expect(runs.map((r) => r.status)).toEqual(['applied', 'applied']);
    expect(await stateOf('acc-limit-a')).toBe('SAFE');
    expect((await h.stores.journal.head('acc-limit-a'))!.seq).toBe(2);
  });

  it('never loosens what an operator set in the meantime: a suspended account stays suspended', async () => {
    await openAccount(h, 'acc-limit-s');
    expect((await h.run('state-change', { accountId: 'acc-limit-s', idempotencyKey: 'suspend-by-hand', actor: 'operator', to: 'SUSPENDED', reason: 'looking into it' })).status).toBe('applied');
    const r = await breach('acc-limit-s', 'limit-drawdown-2026-11', 'SAFE');
    expect(r).toMatchObject({ status: 'refused', code: 'invalid_state' });
    expect(await stateOf('acc-limit-s')).toBe('SUSPENDED');
    // That answer was not recorded under the breach's key: once the operator reactivates, the limit still acts.
    expect((await h.run('state-change', { accountId: 'acc-limit-s', idempotencyKey: 'resume-by-hand', actor: 'operator', to: 'ACTIVE', reason: 'cleared' })).status).toBe('applied');
    expect((await breach('acc-limit-s', 'limit-drawdown-2026-11', 'SAFE')).status).toBe('applied');
    expect(await stateOf('acc-limit-s')).toBe('SAFE');
    // A stronger limit still acts on a SAFE account.
    await openAccount(h, 'acc-limit-t');
    await breach('acc-limit-t', 'limit-drawdown-2026-10', 'SAFE');
    expect((await breach('acc-limit-t', 'limit-monthly-loss-2026-11', 'SUSPENDED')).status).toBe('applied');
    expect(await stateOf('acc-limit-t')).toBe('SUSPENDED');
    expect((await verifyLedger(h.stores, { idle: true })).problems).toEqual([]);
  });
});

describe('reactivating after a limit', () => {
  const stateOf = async (accountId: string) => loadBalances((await h.stores.journal.head(accountId))!.after).state;

  it('goes back to ACTIVE only from the state the breach set, never over an operator\'s later suspension', async () => {
    await openAccount(h, 'acc-react-a');
    await h.run('limit-breach', { accountId: 'acc-react-a', idempotencyKey: 'limit-drawdown-2026-11', actor: 'risk-limits', to: 'SAFE', rule: 'drawdown', period: '2026-11', reason: 'r' });
    expect((await h.run('reactivate', { accountId: 'acc-react-a', idempotencyKey: 'reactivate-rev-1', actor: 'key_op', from: 'SAFE', reason: 'approved' })).status).toBe('applied');
    expect(await stateOf('acc-react-a')).toBe('ACTIVE');

    await openAccount(h, 'acc-react-b');
    await h.run('limit-breach', { accountId: 'acc-react-b', idempotencyKey: 'limit-drawdown-2026-11', actor: 'risk-limits', to: 'SAFE', rule: 'drawdown', period: '2026-11', reason: 'r' });
    await h.run('state-change', { accountId: 'acc-react-b', idempotencyKey: 'fraud-hold', actor: 'operator', to: 'SUSPENDED', reason: 'fraud check' });
    const stale = await h.run('reactivate', { accountId: 'acc-react-b', idempotencyKey: 'reactivate-rev-2', actor: 'key_op', from: 'SAFE', reason: 'approved' });
    expect(stale).toMatchObject({ status: 'refused', code: 'invalid_state' });
    expect(await stateOf('acc-react-b')).toBe('SUSPENDED');
  });

  it('keeps one open review per account and kind, and opens a new one the same day once the first is decided', async () => {
    const reviews = new ReviewRepository(h.mongo);
    await reviews.init();
    const file = (decisionId: string) => reviews.file({ kind: 'reactivate', accountId: 'acc-rev-1', ownerId: null, decisionId, urgency: 'high', day: '2026-11-20', now: new Date(), snoozeDays: 0 });
    const [a, b] = await Promise.all([file('limit-drawdown-2026-11'), file('limit-drawdown-2026-11')]);
    expect([a.event, b.event].sort()).toEqual(['opened', 'refreshed']);
    expect(await reviews.model.countDocuments({ subject: 'reactivate:acc-rev-1', state: 'PENDING' })).toBe(1);
    await reviews.decide(a.review!._id, 'APPROVED', 'key_op', null, new Date());
    const again = await file('limit-monthly-loss-2026-11');
    expect([again.event, again.review!._id]).toEqual(['opened', 'rev_reactivate_acc-rev-1_2026-11-20-2']);
    expect(await reviews.expire('reactivate', 'acc-rev-1', 'cleared', new Date())).toBe(true);
    expect(await reviews.model.countDocuments({ subject: 'reactivate:acc-rev-1', state: 'PENDING' })).toBe(0);
  });
});
