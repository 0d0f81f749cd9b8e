import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaults } from '../config/defaults.js';
import { deposit, dividend, openAccount, stateChange, transferOp, withdrawal } from '../services/account-ops/postings.js';
import { FORK_DONE, FORK_IN_FLIGHT } from '../shared/db/fork-repository.js';
import { MERGE_DONE, MERGE_IN_FLIGHT } from '../shared/db/merge-repository.js';
import { abortFork, runFork } from '../shared/ledger/fork-saga.js';
import { abortMerge, mergeGroupIdOf, newTargetIdOf, requestMerge, runMerge } from '../shared/ledger/merge-saga.js';
import type { WriteHooks } from '../shared/ledger/post.js';
import { storedOutcome } from '../shared/ledger/operation.js';
import { resumeStuck, settleSagaJob } from '../shared/ledger/saga-job.js';
import type { LedgerStores } from '../shared/ledger/stores.js';
import { verifyLedger } from '../shared/ledger/verify.js';
import { type LedgerHarness, startLedger } from './helpers/ledger-harness.js';
import { type SagaWorld, head, money, newFork, open, sagaWorld } from './helpers/saga-world.js';
import { SteppedRun } from './helpers/stepped.js';

/**
 * Review attacks: each test states the behaviour the design promises and fails where it does not hold.
 */
let h: LedgerHarness;
let w: SagaWorld;
/** A "process" whose head cache keeps accounts for a minute (the default keeps them 1 s), so a stale head is deterministic. */
let slow: LedgerStores;

beforeAll(async () => {
  h = await startLedger('review', { worker: false });
  w = await sagaWorld(h);
  slow = await h.storesOf({ settings: { ...defaults.ledger, accountCacheMs: 60_000 } });
});
afterAll(async () => {
  await w?.a.close();
  await w?.b.close();
  await slow?.close();
  await h?.close();
});

/** Hooks that throw before the first write whose label starts with `label`: the process dies there (nothing after it runs). */
const dieBefore = (label: string): WriteHooks => ({
  beforeWrite: async (l) => {
    if (l.startsWith(label)) throw new Error(`process died before ${l}`);
  },
});

/** Steps a run until it is paused before a write whose label starts with `label`. */
async function until<T>(run: SteppedRun<T>, label: string): Promise<void> {
  for (;;) {
    const next = await run.step();
    if (next === null) throw new Error(`run ended before ${label}`);
    if (next.startsWith(label)) return;
  }
}

const LAST = { attemptsMade: 4, opts: { attempts: 5 } };

async function problemsAbout(...ids: string[]): Promise<string[]> {
  await Promise.all([w.a.projector.flush(), w.b.projector.flush(), w.operator.projector.flush(), slow.projector.flush()]);
  const report = await verifyLedger(w.operator, { idle: true });
  return report.problems.filter((p) => ids.some((id) => p.includes(id)));
}

async function openWith(id: string, amount: string, extra: { parentId?: string | null; config?: Record<string, unknown> } = {}) {
  const o = await openAccount(w.deps(w.operator), { accountId: id, idempotencyKey: `open-${id}`, actor: 'test', tier: 'GEN', name: id, ownerId: 'owner-1', parentId: extra.parentId ?? null, config: (extra.config ?? {}) as never, initialDeposit: amount }, null);
  expect(o.status).toBe('applied');
  return id;
}

const merge = async (sourceId: string, targetId: string, seq = 2) =>
  (await requestMerge(w.deps(w.operator), { sourceId, sourceSeq: seq, targetId, strategy: 'sibling', partial: null, newTarget: null, groupId: null, opportunityId: null, requestedBy: 'test', scheduledFor: null })).merge;

describe('F1: a saga whose start landed but whose record still says REQUESTED', () => {
  it('fork: is reported by verify, then resumed by the recovery job', async () => {
    const f = await newFork(w, 'req-stuck');
    // The process dies right after the parent's start entry landed, before the record moved to FORKING
    // (and its job stalls a second time, so BullMQ fails it without running it again: maxStalledCount 1).
    await expect(runFork(w.deps(w.a, dieBefore('fork-phase FORKING')), f._id, 'job')).rejects.toThrow(/process died/);
    expect(money(await head(w, f.parentId))).toEqual({ cash: '112000.00', reserved: '102000.00', state: 'FORKING', owner: f._id });
    expect((await w.operator.forks.get(f._id))!.phase).toBe('REQUESTED');

    // Before recovery, verify (idle) names the account held by a saga that did not get on.
    const flagged = await problemsAbout(f.parentId, f._id);
    const recovered = await resumeStuck(w.operator.forks.model, FORK_IN_FLIGHT, new Date(Date.now() + 3600_000), (id) => runFork(w.deps(w.b), id, 'recover'), async (x) => x.phase, async () => undefined, async (id) => (await w.operator.journal.byKey(`${id}:start`))?.kind === 'fork-start');
    const parentFreed = (await head(w, f.parentId))!.owner === null;
    expect({ recovered: recovered.resumed, parentFreed, verifyFlagsIt: flagged.length > 0, after: await problemsAbout(f.parentId, f._id) }).toEqual({ recovered: ['COMPLETED'], parentFreed: true, verifyFlagsIt: true, after: [] });
  });

  it('merge: the same', async () => {
    const [s, t] = [await open(w, 'acc-s-req-stuck', '30000.00'), await open(w, 'acc-t-req-stuck', '50000.00')];
    const m = await merge(s, t);
    await expect(runMerge(w.deps(w.a, dieBefore('merge-phase MERGING')), m._id, 'job')).rejects.toThrow(/process died/);
    expect(money(await head(w, s))).toEqual({ cash: '30000.00', reserved: '30000.00', state: 'MERGING', owner: m._id });
    const flagged = await problemsAbout(s, m._id);
    const recovered = await resumeStuck(w.operator.merges.model, MERGE_IN_FLIGHT, new Date(Date.now() + 3600_000), (id) => runMerge(w.deps(w.b), id, 'recover'), async (x) => x.phase, async () => undefined, async (id) => (await w.operator.journal.byKey(`${id}:start`))?.kind === 'merge-start');
    expect({ recovered: recovered.resumed, verifyFlagsIt: flagged.length > 0, after: await problemsAbout(s, m._id) }).toEqual({ recovered: ['COMPLETED'], verifyFlagsIt: true, after: [] });
  });
});

describe('F2: a merge with strategy new rolled back before its target was opened', () => {
  it('leaves no target document without a journal behind', async () => {
    const s = await open(w, 'acc-s-new-rb', '30000.00');
    const groupId = mergeGroupIdOf([{ id: s, seq: 2 }]);
    const targetId = newTargetIdOf(groupId);
    const m = (await requestMerge(w.deps(w.operator), { sourceId: s, sourceSeq: 2, targetId, strategy: 'new', partial: null, newTarget: { tier: 'GEN', name: 'new target', ownerId: 'owner-1', parentId: null }, groupId, opportunityId: null, requestedBy: 'test', scheduledFor: null })).merge;
    // The last attempt fails between the target's document and its open entry (a connection reset): the job rolls back.
    const deps = w.deps(w.a, dieBefore(`append ${groupId}:open`));
    const settled = await settleSagaJob(LAST, {
      run: () => runMerge(deps, m._id, 'job'),
      get: async () => (await w.operator.merges.get(m._id))!,
      abort: async (current, reason) => ({ committed: (await abortMerge(w.deps(w.a), current, reason, 'job')).committed }),
      done: MERGE_DONE,
      onStuck: async () => undefined,
    });
    expect(settled.phase).toBe('ROLLED_BACK');
    expect(money(await head(w, s))).toEqual({ cash: '30000.00', reserved: '0.00', state: 'ACTIVE', owner: null });
    const leftovers = { document: (await w.operator.accounts.get(targetId))?._id ?? null, journal: await w.operator.journal.head(targetId), verify: await problemsAbout(targetId) };
    expect(leftovers).toEqual({ document: null, journal: null, verify: [] });
  });
});

describe('F3: a fork run still alive when an abort rolled the fork back', () => {
  it('does not leave the child document it creates afterwards behind', async () => {
    const f = await newFork(w, 'zombie');
    const run = new SteppedRun((hooks) => runFork(w.deps(w.a, hooks), f._id, 'job-a'));
    await until(run, `child-document ${f.childId}`);
    const aborted = await abortFork(w.deps(w.b), (await w.operator.forks.get(f._id))!, { code: 'aborted', message: 'operator' }, 'api');
    expect(aborted.fork.phase).toBe('ROLLED_BACK');
    // Run A writes the child document, then its process dies before its (refused) child-open.
    await until(run, `append ${f._id}:child-open`);
    // Nobody comes back: the fork is ended, so a resume returns at once.
    expect((await runFork(w.deps(w.b), f._id, 'resume')).phase).toBe('ROLLED_BACK');
    const leftovers = { document: (await w.operator.accounts.get(f.childId))?._id ?? null, verify: await problemsAbout(f.childId) };
    expect(leftovers).toEqual({ document: null, verify: [] });
  });
});

describe('F4: hierarchy', () => {
  it('a merge into a grandchild does not make the parents form a cycle', async () => {
    const s = await openWith('acc-cyc-s', '30000.00');
    const c = await openWith('acc-cyc-c', '30000.00', { parentId: s });
    const t = await openWith('acc-cyc-t', '50000.00', { parentId: c });
    const m = await merge(s, t);
    expect((await runMerge(w.deps(w.a), m._id, 'job')).phase).toBe('COMPLETED');
    const parents = { c: (await w.operator.accounts.get(c))!.parentId, t: (await w.operator.accounts.get(t))!.parentId };
    const problems = await problemsAbout(s, c, t);
    expect({ parents, problems }).toEqual({ parents: { c: t, t: null }, problems: [] });
  });

  it('merging a source while its own parent is merged away does not put the target under the merged parent', async () => {
    const g = await openWith('acc-hier-g', '30000.00');
    const hh = await openWith('acc-hier-h', '50000.00');
    const s = await openWith('acc-hier-s', '30000.00', { parentId: g });
    const t = await openWith('acc-hier-t', '50000.00', { parentId: s });
    const intoChild = await merge(s, t);
    const run = new SteppedRun((hooks) => runMerge(w.deps(w.a, hooks), intoChild._id, 'job-a'));
    // S→T has read S's document (parent G) and is about to lift T to S's parent.
    await until(run, `merge-hierarchy ${s}`);
    // Meanwhile G merges into H: G's children (S) move to H.
    expect((await runMerge(w.deps(w.b), (await merge(g, hh))._id, 'job-b')).phase).toBe('COMPLETED');
    expect((await run.finish()).phase).toBe('COMPLETED');
    const tParent = (await w.operator.accounts.get(t))!.parentId;
    const problems = await problemsAbout(t);
    expect({ tParent, problems }).toEqual({ tParent: hh, problems: [] });
  });

  it('closing an account that once absorbed a merge keeps the ledger verifiable', async () => {
    const [s, t] = [await open(w, 'acc-s-close-t', '30000.00'), await open(w, 'acc-t-close-t', '50000.00')];
    expect((await runMerge(w.deps(w.a), (await merge(s, t))._id, 'job')).phase).toBe('COMPLETED');
    // Months later the owner empties and closes the target: an ordinary, allowed operation.
    const closed = await withdrawal(w.deps(w.operator), { accountId: t, idempotencyKey: 'close-target', actor: 'test', amount: '80000.00', close: true }, null);
    expect(closed.status).toBe('applied');
    expect(await problemsAbout(s, t)).toEqual([]);
  });

  it('an account opened under a merged-away parent is refused, or verify stays clean', async () => {
    const [s, t] = [await open(w, 'acc-s-open-under', '30000.00'), await open(w, 'acc-t-open-under', '50000.00')];
    expect((await runMerge(w.deps(w.a), (await merge(s, t))._id, 'job')).phase).toBe('COMPLETED');
    const o = await openAccount(w.deps(w.operator), { accountId: 'acc-under-merged', idempotencyKey: 'open-under', actor: 'test', tier: 'GEN', name: 'x', ownerId: 'owner-1', parentId: s, config: {}, initialDeposit: '10.00' }, null);
    const problems = await problemsAbout('acc-under-merged');
    expect({ status: o.status, problems: o.status === 'applied' ? problems : [] }).toEqual({ status: o.status, problems: [] });
  });
});

describe('F5: two merges into one target at once', () => {
  it('keep the stricter limits of both sources in the target configuration', async () => {
    const s1 = await openWith('acc-cfg-s1', '30000.00', { config: { maxPositions: 3 } });
    const s2 = await openWith('acc-cfg-s2', '30000.00', { config: { cashBuffer: '0.2' } });
    const t = await openWith('acc-cfg-t', '50000.00');
    const m1 = await merge(s1, t);
    const m2 = await merge(s2, t);
    const a = new SteppedRun((hooks) => runMerge(w.deps(w.a, hooks), m1._id, 'job-1'));
    // m1 has read the target's configuration and is about to write its reconciliation.
    await until(a, `merge-config ${t}`);
    expect((await runMerge(w.deps(w.b), m2._id, 'job-2')).phase).toBe('COMPLETED');
    expect((await w.operator.accounts.get(t))!.config).toEqual({ cashBuffer: '0.2' });
    expect((await a.finish()).phase).toBe('COMPLETED');
    expect((await w.operator.accounts.get(t))!.config).toEqual({ maxPositions: 3, cashBuffer: '0.2' });
  });

  it('an operator tightening the target during a merge keeps the change', async () => {
    const s = await openWith('acc-cfg-s3', '30000.00');
    const t = await openWith('acc-cfg-t3', '50000.00');
    const m = await merge(s, t);
    const a = new SteppedRun((hooks) => runMerge(w.deps(w.a, hooks), m._id, 'job-1'));
    await until(a, `merge-config ${t}`);
    await w.operator.accounts.updateProfile(t, { config: { maxPositions: 2 } }, new Date());
    expect((await a.finish()).phase).toBe('COMPLETED');
    expect((await w.operator.accounts.get(t))!.config).toEqual({ maxPositions: 2 });
  });
});

describe('F6: one client key, two kinds of operation', () => {
  it('a key used for a deposit cannot start a transfer once the job is gone from BullMQ', async () => {
    const [a, b] = [await open(w, 'acc-key-a', '1000.00'), await open(w, 'acc-key-b', '1000.00')];
    const d = await deposit(w.deps(w.operator), { accountId: a, idempotencyKey: 'same-key-1', actor: 'test', amount: '100.00' }, null);
    expect(d.status).toBe('applied');
    const t = await transferOp(w.deps(w.operator), { accountId: a, idempotencyKey: 'same-key-1', actor: 'test', toAccountId: b, amount: '500.00' }, null);
    expect({ status: t.status, a: money(await head(w, a))?.cash, b: money(await head(w, b))?.cash }).toEqual({ status: 'refused', a: '1100.00', b: '1000.00' });
  });
});

describe('F7: transfers decided on what is not the destination head', () => {
  it('a transfer to an account whose open entry has not landed yet waits, like every other posting', async () => {
    const from = await open(w, 'acc-tr-early-from', '1000.00');
    const to = 'acc-tr-early-to';
    const openReq = { accountId: to, idempotencyKey: `open-${to}`, actor: 'test', tier: 'GEN' as const, name: to, ownerId: 'owner-1', parentId: null, config: {}, initialDeposit: '10.00' };
    // The open-account job dies between the document and the open entry (its retry comes later).
    await expect(openAccount(w.deps(w.operator, dieBefore(`append ${to}/open-${to}`)), openReq, null)).rejects.toThrow(/process died/);
    const req = { accountId: from, idempotencyKey: 'tr-early-1', actor: 'test', toAccountId: to, amount: '100.00' };
    const first = await transferOp(w.deps(w.operator), req, null).catch((e: Error) => ({ status: `waits: ${e.name}` }));
    expect((await openAccount(w.deps(w.operator), openReq, null)).status).toBe('applied');
    const retried = await transferOp(w.deps(w.operator), req, null);
    const show = (o: { status: string; code?: string }) => (o.status === 'refused' ? `refused: ${o.code}` : o.status);
    expect({ first: show(first), retried: show(retried) }).toEqual({ first: 'waits: AccountNotOpenError', retried: 'applied' });
  });

  it('a transfer is not refused on a destination state superseded before it was asked for', async () => {
    const from = await open(w, 'acc-tr-stale-from', '1000.00');
    const to = await open(w, 'acc-tr-stale-to', '1000.00');
    // Process "slow" suspends the destination (and so knows its head)...
    expect((await stateChange(w.deps(slow), { accountId: to, idempotencyKey: 'suspend-1', actor: 'test', to: 'SUSPENDED', reason: 'check' }, null)).status).toBe('applied');
    // ...another process reactivates it...
    expect((await stateChange(w.deps(w.operator), { accountId: to, idempotencyKey: 'resume-1', actor: 'test', to: 'ACTIVE', reason: 'ok' }, null)).status).toBe('applied');
    expect(money(await head(w, to))!.state).toBe('ACTIVE');
    // ...then a transfer to it runs in "slow": its hold is decided on the cached head of the destination, and the refusal is kept.
    const t = await transferOp(w.deps(slow), { accountId: from, idempotencyKey: 'tr-stale-1', actor: 'test', toAccountId: to, amount: '100.00' }, null);
    expect(t.status === 'refused' ? `${t.status}: ${t.message}` : t.status).toBe('applied');
  });
});

describe('F8: a platform event refused while a saga holds the account', () => {
  it('a dividend posted during a fork waits (its job retries) and applies with the same key once the fork is over', async () => {
    const f = await newFork(w, 'div-locked');
    const run = new SteppedRun((hooks) => runFork(w.deps(w.a, hooks), f._id, 'job-a'));
    await until(run, 'fork-phase FORKING');
    const req = { accountId: f.parentId, idempotencyKey: 'div-2026-11-18-ACME', actor: 'admin', symbol: 'ACME', amount: '12.00' };
    const during = await dividend(w.deps(w.operator), req, null).catch((e: Error) => e.name);
    expect((await run.finish()).phase).toBe('COMPLETED');
    const after = await dividend(w.deps(w.operator), req, null);
    expect({ during, after: after.status === 'refused' ? after.code : after.status }).toEqual({ during: 'AccountLockedError', after: 'applied' });
  });
});


describe('F9: a settlement step decided on a stale head of its own account', () => {
  it('is decided again on the real head before it is answered refused (no false saga-stuck)', async () => {
    const f = await newFork(w, 'stale-must');
    // Process "slow" has just posted on the parent, so it knows its head (ACTIVE, not owned).
    expect((await deposit(w.deps(slow), { accountId: f.parentId, idempotencyKey: 'dep-stale-must', actor: 'test', amount: '1.00' }, null)).status).toBe('applied');
    // Process B starts the fork (parent FORKING, record FORKING), then stalls for good.
    const b = new SteppedRun((hooks) => runFork(w.deps(w.b, hooks), f._id, 'job-b'));
    await until(b, `child-document ${f.childId}`);
    // BullMQ hands the job to "slow", on its last attempt.
    let stuck = false;
    const settled = await settleSagaJob(LAST, {
      run: () => runFork(w.deps(slow), f._id, 'job-slow'),
      get: async () => (await w.operator.forks.get(f._id))!,
      abort: async (current, reason) => ({ committed: (await abortFork(w.deps(slow), current, reason, 'job-slow')).committed }),
      done: FORK_DONE,
      onStuck: async () => void (stuck = true),
    }).catch((e: Error) => e);
    expect({ phase: settled instanceof Error ? `${settled.name}: ${settled.message.slice(0, 80)}` : settled.phase, stuck }).toEqual({ phase: 'COMPLETED', stuck: false });
  });
});

describe('F10: an open-account job that dies before its open entry', () => {
  it('leaves nothing answered, and its retry opens the account with its first deposit in one entry', async () => {
    const id = 'acc-open-nodep';
    const req = { accountId: id, idempotencyKey: `open-${id}`, actor: 'test', tier: 'GEN' as const, name: id, ownerId: 'owner-1', parentId: null, config: {}, initialDeposit: '500.00' };
    await expect(openAccount(w.deps(w.operator, dieBefore(`append ${id}/open-${id}`)), req, null)).rejects.toThrow(/process died/);
    expect(await storedOutcome(w.operator, id, `open-${id}`)).toBeNull();
    const retried = await openAccount(w.deps(w.operator), req, null);
    expect([retried.status, retried.status === 'applied' && retried.seq, money(await head(w, id))!.cash]).toEqual(['applied', 1, '500.00']);
  });
});
