/**
 * A page of consolidation assessments reads each thing once (ancestors, children, owners' roots,
 * series, closes) and must measure every account exactly as a page of one does; the grouped read of
 * children and roots must stay whole when its limit cuts it short. Real MongoDB-protocol server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConsolidationDeps, measureInputs, measurePage, openConsolidationDeps } from '../shared/ledger/consolidation.js';
import { FixedClock } from './helpers/fixed-clock.js';
import { type LedgerHarness, openAccount, startLedger } from './helpers/ledger-harness.js';

let h: LedgerHarness;
let cd: ConsolidationDeps;
const clock = new FixedClock(new Date('2026-11-18T16:00:00Z'));

beforeAll(async () => {
  h = await startLedger('conspage', { clock });
  cd = await openConsolidationDeps(h.mongo, h.stores, h.config, clock);
  // Owner 1: a root with five children (two below the minimum), and a second root of the same tier.
  await openAccount(h, 'p-root', '50000.00', { ownerId: 'owner-1' });
  await openAccount(h, 'p-root-2', '20000.00', { ownerId: 'owner-1' });
  for (const [i, amount] of ['15000.00', '12000.00', '9000.00', '500.00', '11000.00'].entries()) {
    await openAccount(h, `p-child-${i}`, amount, { ownerId: 'owner-1', parentId: 'p-root' });
  }
  await openAccount(h, 'p-grandchild', '10500.00', { ownerId: 'owner-1', parentId: 'p-child-0' });
  await openAccount(h, 'p2-child', '10000.00', { ownerId: 'owner-1', parentId: 'p-root-2' });
  // A root of another tier is not a Gen root's peer.
  await openAccount(h, 'p-rev-root', '120000.00', { ownerId: 'owner-1', tier: 'REV' });
  // Owner 2: one root alone (owner 1's roots are not its siblings).
  await openAccount(h, 'q-root', '30000.00', { ownerId: 'owner-2' });
  await h.stores.projector.flush();
});
afterAll(async () => {
  await h?.close();
});

const summary = (i: Awaited<ReturnType<typeof measureInputs>>) => ({
  equity: i.equity.toFixed(2),
  depth: i.depth,
  parent: i.parent?.accountId ?? null,
  siblings: i.siblings.map((s) => s.accountId).sort(),
  small: [...i.smallSiblingIds].sort(),
});

describe('a page of consolidation assessments', () => {
  it('measures every account as a page of one does', async () => {
    const ids = ['p-root', 'p-root-2', 'p-child-0', 'p-child-3', 'p-grandchild', 'q-root', 'p-rev-root'];
    const accounts = [...(await h.stores.accounts.getMany(ids)).values()];
    const page = await measurePage(cd, accounts, false);
    for (const a of accounts) expect([a._id, summary(page.get(a._id)!)]).toEqual([a._id, summary(await measureInputs(cd, a, false))]);
    expect(summary(page.get('p-child-3')!)).toEqual({ equity: '500.00', depth: 1, parent: 'p-root', siblings: ['p-child-0', 'p-child-1', 'p-child-2', 'p-child-4'], small: ['p-child-2', 'p-child-3'] });
    expect(summary(page.get('p-grandchild')!)).toMatchObject({ depth: 2, parent: 'p-child-0', siblings: [] });
    expect(summary(page.get('p-root')!)).toMatchObject({ depth: 0, parent: null, siblings: ['p-root-2'] });
    expect(summary(page.get('q-root')!).siblings).toEqual([]);
    expect(summary(page.get('p-rev-root')!).siblings).toEqual([]);
  });

  it('reads the groups a limit cut short one at a time', async () => {
    // Two a group: p-root's five children fill the one read (its limit is 2 × 2), so p-root-2's are read on their own.
    const groups = await h.stores.accounts.firstOfGroups('parentId', ['p-root-2', 'p-root'], 2);
    expect([...groups].map(([k, v]) => [k, v.map((a) => a._id)])).toEqual([
      ['p-root', ['p-child-0', 'p-child-1']],
      ['p-root-2', ['p2-child']],
    ]);
    const roots = await h.stores.accounts.firstOfGroups('ownerId', ['owner-1', 'owner-2'], 1, 'GEN');
    expect([...roots].map(([k, v]) => [k, v.map((a) => a._id)])).toEqual([
      ['owner-1', ['p-root']],
      ['owner-2', ['q-root']],
    ]);
  });
});
