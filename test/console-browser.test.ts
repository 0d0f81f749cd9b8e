import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import mongoose from 'mongoose';
import { type Browser, type Page, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVICE_NAMES } from '../config/schema.js';
import { parseApiKey } from '../shared/auth/api-keys.js';
import { OpportunityRepository } from '../shared/db/opportunity-repository.js';
import { ReviewRepository } from '../shared/db/review-repository.js';
import { dropQueuePrefix, isolatedEnv, waitFor } from './helpers/env.js';
import { portEnv } from './helpers/fleet-env.js';
import { DIST, Proc, ROOT, httpGet } from './helpers/processes.js';

/**
 * The console in a real browser (Debian's Chromium through playwright-core) against the real fleet
 * of `npm run fleet`: sign in, find an account, approve the fork review the threshold monitor filed
 * and watch the child appear in the tree, reject a merge review, open Bull Board. Each page is
 * photographed into reports/.
 */
const iso = isolatedEnv('console');
const ADMIN = 'console-fleet-admin-key-0123456789';
const SHOTS = join(ROOT, 'reports', 'console');
/** Headless and offline: without the background-networking flags Chromium keeps calling out and failing. */
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];

let fleet: Proc | undefined;
let browser: Browser | undefined;
let base = '';
let mongo: mongoose.Connection | undefined;

const api = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
  return { status: res.status, body: (await res.json()) as any };
};
const shot = (page: Page, name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  const { env, ports, apiPort } = await portEnv();
  base = `http://127.0.0.1:${apiPort}`;
  fleet = new Proc(join(DIST, 'scripts', 'fleet.js'), { ...iso.env, ...env, ADMIN_API_KEY: ADMIN, FLEET__SHUTDOWN_DEADLINE_MS: '3000' });
  await Promise.all(SERVICE_NAMES.map((name) => waitFor(`${name} ready`, async () => (await httpGet(`http://127.0.0.1:${ports[name]}/readyz`)).status === 200, 30_000, 100)));
  const executablePath = process.env['CHROMIUM_PATH'];
  if (!executablePath) throw new Error('CHROMIUM_PATH is not set: run the tests through npm test, whose server script installs Debian\'s chromium');
  browser = await chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS });
  mongo = await mongoose.createConnection(iso.mongodbUrl).asPromise();
}, 90_000);
afterAll(async () => {
  await browser?.close();
  fleet?.kill('SIGTERM');
  await fleet?.exitWithin(15_000).catch(() => fleet?.kill('SIGKILL'));
  await mongo?.dropDatabase();
  await mongo?.close();
  await dropQueuePrefix(iso, iso.queuePrefix);
});

/** A merge review as the consolidation scanner files one: a weak child to fold into its parent. */
async function fileMergeReview(parentId: string, childId: string): Promise<string> {
  const date = new Date().toISOString().slice(0, 10);
  const opportunities = new OpportunityRepository(mongo!);
  const reviews = new ReviewRepository(mongo!);
  const id = `copp_${childId}_${date}`;
  await opportunities.recordOnce({ _id: id, accountId: childId, ownerId: 'olga', date, seq: 1, fired: ['operational-efficiency'], strategy: 'parent', targetId: parentId, sourceIds: [childId], amount: null, urgency: 'medium', confidence: 0.6, action: 'review', assessment: { efficiency: '0.4' }, inputs: { equity: '9000.00' }, mergeIds: [], reviewId: null, createdAt: new Date() });
  const { review } = await reviews.file({ kind: 'merge', accountId: childId, ownerId: 'olga', decisionId: id, urgency: 'medium', day: date, now: new Date(), snoozeDays: 10 });
  return review!._id;
}

describe('the operator console in a browser', () => {
  it('signs in, approves a fork the child of which appears in the tree, rejects a merge, and opens Bull Board', async () => {
    // An operator's world: a Gen-Acc over its fork line (the threshold monitor files a review for a
    // person, its confidence being below the automatic threshold) and a weak account to merge.
    const key = (await api('POST', '/api/v1/keys', { role: 'admin', label: 'console test' })).body.key as string;
    const parent = (await api('POST', '/api/v1/accounts?wait=true', { type: 'GEN', name: 'Olga growth', ownerId: 'olga', initialDeposit: '120000.00', idempotencyKey: 'console-parent' })).body.id as string;
    const weakParent = (await api('POST', '/api/v1/accounts?wait=true', { type: 'GEN', name: 'Olga base', ownerId: 'olga', initialDeposit: '40000.00', idempotencyKey: 'console-base' })).body.id as string;
    const weak = (await api('POST', '/api/v1/accounts?wait=true', { type: 'GEN', name: 'Olga weak', ownerId: 'olga', parentId: weakParent, initialDeposit: '9000.00', idempotencyKey: 'console-weak' })).body.id as string;
    const forkReview = await waitFor('the fork review', async () => (await api('GET', '/api/v1/reviews?state=PENDING')).body.items.find((r: { accountId: string; kind: string }) => r.accountId === parent && r.kind === 'fork')?.id as string | undefined, 30_000, 200);
    const mergeReview = await fileMergeReview(weakParent, weak);

    const context = await browser!.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await page.goto(`${base}/console/`);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await shot(page, 'sign-in');
    // By keyboard alone: the key field is the first stop, Enter signs in.
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement?.labels?.[0]?.textContent?.trim()')).toBe('API key');
    await page.keyboard.type(key);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Reviews', level: 1 }).waitFor();
    // The key is nowhere the page can reach: not in the URL, not in its storage, not in a readable cookie.
    expect(page.url()).not.toContain(key);
    expect(await page.evaluate('JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie')).not.toContain(parseApiKey(key)!.secret);

    // The fork review with its factor breakdown; approved with a reason.
    const forkCard = page.getByRole('article', { name: `Review ${forkReview}` });
    await forkCard.waitFor();
    await forkCard.getByText('systemLoad').first().waitFor();
    await forkCard.getByText('120000.00').first().waitFor();
    await shot(page, 'reviews');
    await forkCard.getByLabel('Reason').fill('growth is steady; fork approved');
    await forkCard.getByRole('button', { name: 'Approve' }).click();
    await page.getByRole('status').filter({ hasText: `Approved ${forkReview}` }).waitFor();

    // The merge review, rejected with a reason.
    const mergeCard = page.getByRole('article', { name: `Review ${mergeReview}` });
    await mergeCard.getByLabel('Reason').fill('keep it separate for now');
    await mergeCard.getByRole('button', { name: 'Reject' }).click();
    await page.getByRole('status').filter({ hasText: `Rejected ${mergeReview}` }).waitFor();
    await waitFor('the rejection stored', async () => (await api('GET', `/api/v1/reviews/${mergeReview}`)).body.state === 'REJECTED');
    expect((await api('GET', `/api/v1/reviews/${mergeReview}`)).body).toMatchObject({ state: 'REJECTED', note: 'keep it separate for now' });

    // Find the account, and watch the forked child appear in its tree.
    await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Accounts' }).click();
    await page.getByLabel('Account id').fill(parent);
    await page.getByRole('button', { name: 'Open' }).click();
    await page.getByRole('heading', { name: `Account ${parent}` }).waitFor();
    const tree = page.getByRole('tree', { name: 'Hierarchy' });
    await waitFor('the child in the tree', async () => (await tree.getByRole('treeitem').count()) >= 2, 30_000, 250);
    const fork = (await api('GET', '/api/v1/forking/status')).body.recent.find((f: { parentId: string }) => f.parentId === parent);
    expect(fork).toMatchObject({ state: 'COMPLETED' });
    await tree.getByRole('treeitem', { name: fork.childId }).waitFor();
    // Money exactly as the API gives it.
    const account = (await api('GET', `/api/v1/accounts/${parent}`)).body;
    await page.getByText(account.cash, { exact: true }).first().waitFor();
    await page.getByRole('img', { name: 'Value chart' }).waitFor();
    await shot(page, 'account');

    for (const [link, heading] of [['Sagas', 'Sagas'], ['Alerts', 'Alerts'], ['Dead letters', 'Dead letters']] as const) {
      await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: link }).click();
      await page.getByRole('heading', { name: heading, level: 1 }).waitFor();
      await shot(page, heading.toLowerCase().replace(' ', '-'));
    }

    // Readable on a phone: nothing wider than the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${base}/console/#/accounts/${parent}`);
    await page.getByRole('heading', { name: `Account ${parent}` }).waitFor();
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    await shot(page, 'account-phone');
    await page.setViewportSize({ width: 1280, height: 900 });

    // Bull Board, on the session the console opened.
    await page.goto(`${base}/console/#/reviews`);
    await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Queues' }).click();
    await page.waitForURL(`${base}/admin/queues**`);
    // The account-ops queue, with the jobs the clicks above went through.
    await page.getByRole('link', { name: 'account-ops' }).first().click({ timeout: 20_000 });
    await page.getByText(/completed/i).first().waitFor({ timeout: 20_000 });
    await shot(page, 'bull-board');
    expect(pageErrors).toEqual([]);

    // Everything the clicks did, exact to the cent: the audit chains whole, and the ledger's own verify.
    expect((await api('GET', '/api/v1/audit/verify')).body).toMatchObject({ ok: true });
    const verify = spawnSync(process.execPath, [join(DIST, 'scripts', 'cli.js'), 'verify'], { env: { ...process.env, ...iso.env }, encoding: 'utf8', timeout: 60_000 });
    expect([verify.status, verify.stderr]).toEqual([0, expect.any(String)]);
    await context.close();
  }, 180_000);

  it('sends a browser that opens Bull Board without a session to sign in, then back to the board', async () => {
    const context = await browser!.newContext();
    const page = await context.newPage();
    await page.goto(`${base}/admin/queues`);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByLabel('API key').fill(ADMIN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${base}/admin/queues**`);
    await page.getByText('account-ops').first().waitFor({ timeout: 20_000 });
    // A viewer signs in to the console but gets no board and no buttons it may not use.
    const viewer = (await api('POST', '/api/v1/keys', { role: 'viewer', ownerId: 'olga' })).body.key as string;
    const other = await browser!.newContext();
    const vp = await other.newPage();
    await vp.goto(`${base}/console/`);
    await vp.getByLabel('API key').fill(viewer);
    await vp.getByRole('button', { name: 'Sign in' }).click();
    await vp.getByRole('heading', { name: 'Reviews', level: 1 }).waitFor();
    expect(await vp.getByRole('link', { name: 'Queues' }).count()).toBe(0);
    expect(await vp.getByRole('button', { name: 'Approve' }).count()).toBe(0);
    expect((await vp.goto(`${base}/admin/queues`))!.status()).toBe(403);
    await other.close();
    await context.close();
  }, 60_000);
});
