import { Writable } from 'node:stream';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDACT_PATHS } from '../shared/runtime/logger.js';
import { SECURITY_CHAIN } from '../shared/auth/security-events.js';
import { waitFor } from './helpers/env.js';
import { makeKey, startApi, type TestApi } from './helpers/api.js';
import { type LedgerHarness, startLedger } from './helpers/ledger-harness.js';

const ADMIN = 'console-admin-key-0123456789';
let h: LedgerHarness;
let api: TestApi;
const logged: string[] = [];

beforeAll(async () => {
  h = await startLedger('consess', { worker: false });
  // A built console of one page, so the test does not depend on the front end's build.
  const dir = mkdtempSync(join(tmpdir(), 'console-'));
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>console</title><script type="module" src="/console/assets/app.js"></script>');
  writeFileSync(join(dir, 'assets', 'app.js'), 'export {};');
  // Every request logged at info with the fleet's redaction, into memory: the key must never be in it.
  const sink = new Writable({ write: (chunk, _enc, done) => (logged.push(String(chunk)), done()) });
  const logger = pino({ level: 'info', redact: { paths: REDACT_PATHS, censor: '[REDACTED]' } }, sink);
  api = await startApi(h, { adminKey: ADMIN, redis: true, logger, api: { consoleDir: dir } });
});
afterAll(async () => {
  await api?.close();
  await h?.close();
});

type Res = { status: number; body: string; headers: Record<string, unknown>; json: () => any };
const call = async (method: 'GET' | 'POST' | 'DELETE', url: string, opts: { cookie?: string; bearer?: string; console?: boolean; accept?: string; payload?: unknown } = {}): Promise<Res> => {
  const headers: Record<string, string> = {};
  if (opts.cookie) headers['cookie'] = opts.cookie;
  if (opts.bearer) headers['authorization'] = `Bearer ${opts.bearer}`;
  if (opts.console) headers['x-fleet-console'] = '1';
  if (opts.accept) headers['accept'] = opts.accept;
  const res = await api.app.inject({ method, url, headers, ...(opts.payload !== undefined ? { payload: opts.payload as object } : {}) });
  return { status: res.statusCode, body: res.body, headers: res.headers, json: () => JSON.parse(res.body) };
};
/** Signs in with a key and answers the session cookie as a browser would send it back. */
async function signIn(key: string): Promise<{ cookie: string; setCookie: string; principal: any }> {
  const res = await call('POST', '/api/v1/session', { payload: { key }, console: true });
  expect(res.status).toBe(200);
  const setCookie = String(res.headers['set-cookie']);
  return { cookie: setCookie.split(';')[0]!, setCookie, principal: res.json() };
}

describe('the browser session', () => {
  it('is a sealed HttpOnly, SameSite=Strict cookie that never holds the key in clear', async () => {
    const operator = await makeKey(api.keys, 'operator', 'olga');
    const { cookie, setCookie, principal } = await signIn(operator);
    expect(principal).toMatchObject({ role: 'operator', ownerId: 'olga' });
    expect(setCookie).toMatch(/^fleet_session=/);
    expect(setCookie).toMatch(/HttpOnly/i);
    expect(setCookie).toMatch(/SameSite=Strict/i);
    // Plain HTTP (a local fleet): a Secure cookie would never be sent back.
    expect(setCookie).not.toMatch(/; Secure/i);
    expect(setCookie).not.toContain(operator);
    expect(decodeURIComponent(setCookie)).not.toContain(operator.split('_')[1]);
    // The console sends its header: the cookie stands for the key.
    expect((await call('GET', '/api/v1/session', { cookie, console: true })).json()).toEqual(principal);
    expect((await call('GET', '/api/v1/accounts', { cookie, console: true })).status).toBe(200);
    // Without the header (a form or image of another site), the cookie counts for nothing on the API.
    expect((await call('GET', '/api/v1/accounts', { cookie })).status).toBe(401);
    expect(logged.join('')).not.toContain(operator);
  });

  it('is Secure when the request came over HTTPS through a trusted proxy', async () => {
    const proxied = await startApi(h, { adminKey: ADMIN, api: { trustProxy: true }, name: 'api-proxied' });
    try {
      const res = await proxied.app.inject({ method: 'POST', url: '/api/v1/session', headers: { 'x-forwarded-proto': 'https', 'x-fleet-console': '1' }, payload: { key: ADMIN } });
      expect(String(res.headers['set-cookie'])).toMatch(/; Secure/i);
    } finally {
      await proxied.close();
    }
  });

  it('refuses a wrong key with the same answer as a wrong Bearer header, and counts it', async () => {
    const unknown = async () => (await api.registry.getSingleMetric('fleet_api_auth_failures_total')!.get()).values.find((v) => v.labels['reason'] === 'unknown_key')!.value;
    const before = await unknown();
    const res = await call('POST', '/api/v1/session', { payload: { key: `fk_${'0'.repeat(16)}_${'x'.repeat(43)}` }, console: true });
    expect([res.status, res.json().error.code]).toEqual([401, 'unauthenticated']);
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(await unknown()).toBe(before + 1);
  });

  it('ends when the key is revoked, and on sign-out', async () => {
    const created = (await call('POST', '/api/v1/keys', { bearer: ADMIN, payload: { role: 'viewer', ownerId: 'piet' } })).json();
    const { cookie } = await signIn(created.key);
    expect((await call('GET', '/api/v1/session', { cookie, console: true })).status).toBe(200);
    expect((await call('DELETE', `/api/v1/keys/${created.keyId}`, { bearer: ADMIN })).status).toBe(200);
    expect((await call('GET', '/api/v1/session', { cookie, console: true })).status).toBe(401);

    const again = await signIn(await makeKey(api.keys, 'viewer', 'piet'));
    const out = await call('DELETE', '/api/v1/session', { cookie: again.cookie, console: true });
    expect(out.status).toBe(204);
    expect(String(out.headers['set-cookie'])).toMatch(/fleet_session=;.*Expires=Thu, 01 Jan 1970/i);
  });
});

describe('Bull Board at /admin/queues', () => {
  it('opens for an admin key by Bearer header or session, with every queue of the fleet', async () => {
    const page = await call('GET', '/admin/queues', { bearer: ADMIN, accept: 'text/html' });
    expect(page.status).toBe(200);
    expect(page.body).toContain('<div id="root">');
    const queues = await call('GET', '/admin/queues/api/queues', { bearer: ADMIN });
    expect(queues.status).toBe(200);
    const names = (queues.json().queues as Array<{ name: string; readOnlyMode: boolean }>).map((q) => q.name).sort();
    expect(names).toEqual(['account-ops', 'alerts', 'consolidation-scan', 'fork', 'merge', 'retention', 'snapshot', 'threshold-check', 'threshold-scan', 'webhooks']);
    expect(queues.json().queues.every((q: { readOnlyMode: boolean }) => q.readOnlyMode)).toBe(true);

    const { cookie } = await signIn(await makeKey(api.keys, 'admin', null));
    expect((await call('GET', '/admin/queues/api/queues', { cookie })).status).toBe(200);
  });

  it('sends a browser without a session to sign in, and refuses every key below admin', async () => {
    const page = await call('GET', '/admin/queues', { accept: 'text/html' });
    expect([page.status, page.headers['location']]).toEqual([303, '/console/?next=%2Fadmin%2Fqueues']);
    expect((await call('GET', '/admin/queues/api/queues')).status).toBe(401);
    const operator = await makeKey(api.keys, 'operator', null);
    expect((await call('GET', '/admin/queues/api/queues', { bearer: operator })).status).toBe(403);
    const { cookie } = await signIn(operator);
    expect((await call('GET', '/admin/queues', { cookie, accept: 'text/html' })).status).toBe(403);
  });
});

describe('refusals on the board', () => {
  it('are answered, counted and recorded as the API\'s are, and a session whose key stopped working is dropped', async () => {
    const operator = await makeKey(api.keys, 'operator', null);
    const refused = await call('GET', '/admin/queues/api/queues', { bearer: operator });
    expect([refused.status, refused.json().error.code]).toEqual([403, 'forbidden']);
    const keyId = operator.split('_')[1]!;
    await waitFor('the role refusal recorded', async () => (await h.stores.audit.model.find({ chain: SECURITY_CHAIN, action: 'role-refused', actor: keyId }).lean()).some((e) => JSON.stringify(e).includes('/admin/queues')));
    expect((await call('GET', '/admin/queues/api/queues', { bearer: `fk_${'1'.repeat(16)}_${'y'.repeat(43)}` })).json().error.code).toBe('unauthenticated');

    const created = (await call('POST', '/api/v1/keys', { bearer: ADMIN, payload: { role: 'admin', label: 'board tab' } })).json();
    const { cookie } = await signIn(created.key);
    expect((await call('GET', '/admin/queues/api/queues', { cookie })).status).toBe(200);
    await call('DELETE', `/api/v1/keys/${created.keyId}`, { bearer: ADMIN });
    const after = await call('GET', '/admin/queues/api/queues', { cookie });
    expect(after.status).toBe(401);
    expect(String(after.headers['set-cookie'])).toMatch(/fleet_session=;.*Expires=Thu, 01 Jan 1970/i);
  });
});

describe('the console pages', () => {
  it('are served from the build with a policy of their own: scripts of this origin only', async () => {
    const page = await call('GET', '/console/');
    expect(page.status).toBe(200);
    expect(page.body).toContain('<title>console</title>');
    const csp = String(page.headers['content-security-policy']);
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain("script-src 'self' 'unsafe-inline'");
    expect((await call('GET', '/console/assets/app.js')).status).toBe(200);
    expect([(await call('GET', '/console')).status]).toEqual([301]);
    // Decided on the route: a percent-encoded path to the board gets the board's policy.
    expect(String((await call('GET', '/%61dmin/queues', { bearer: ADMIN })).headers['content-security-policy'])).toContain("script-src 'self'");
    // The API keeps its own: nothing at all may load from a JSON answer.
    expect(String((await call('GET', '/api/v1/openapi.json')).headers['content-security-policy'])).toContain("default-src 'none'");
  });
});
