import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import mongoose from 'mongoose';
import { SERVICE_NAMES, type ServiceName } from '../config/schema.js';
import { jobId } from '../shared/contracts/jobs.js';
import { QUEUE } from '../shared/contracts/queues.js';
import { Producer } from '../shared/queue/producer.js';
import { loadConfig } from '../config/load.js';
import { dropQueuePrefix, isolatedEnv, waitFor } from './helpers/env.js';
import { portEnv } from './helpers/fleet-env.js';
import { DIST, Proc, ROOT, httpGet } from './helpers/processes.js';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

const SHUTDOWN_DEADLINE_MS = 3000;
const ADMIN_KEY = 'services-test-admin-key-1';
const iso = isolatedEnv('services');
const procs = new Map<ServiceName, Proc>();
let ports: Record<ServiceName, number>;
let apiPort: number;

const scriptOf = (name: ServiceName) => join(DIST, 'services', name, 'main.js');

beforeAll(async () => {
  const p = await portEnv();
  ports = p.ports;
  apiPort = p.apiPort;
  const env = { ...iso.env, ...p.env, ADMIN_API_KEY: ADMIN_KEY, FLEET__SHUTDOWN_DEADLINE_MS: String(SHUTDOWN_DEADLINE_MS) };
  for (const name of SERVICE_NAMES) procs.set(name, new Proc(scriptOf(name), env));
  await Promise.all(
    SERVICE_NAMES.map((name) =>
      waitFor(`${name} ready`, async () => (await httpGet(`http://127.0.0.1:${ports[name]}/readyz`)).status === 200, 30_000, 100),
    ),
  );
});

afterAll(async () => {
  for (const proc of procs.values()) proc.kill('SIGKILL');
  const conn = await mongoose.createConnection(iso.mongodbUrl).asPromise();
  await conn.dropDatabase();
  await conn.close();
  await dropQueuePrefix(iso, iso.queuePrefix);
});

describe('each service as a real process', () => {
  it.each(SERVICE_NAMES)('%s is live, ready, and serves default and queue metrics', async (name) => {
    expect((await httpGet(`http://127.0.0.1:${ports[name]}/healthz`)).status).toBe(200);
    expect(JSON.parse((await httpGet(`http://127.0.0.1:${ports[name]}/readyz`)).body)).toEqual({ status: 'ready' });
    const metrics = await httpGet(`http://127.0.0.1:${ports[name]}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain(`process_cpu_seconds_total{service="${name}"}`);
    expect(metrics.body).toContain(`nodejs_heap_size_used_bytes{service="${name}"}`);
    expect(metrics.body).toMatch(new RegExp(`fleet_queue_jobs\\{queue="[a-z-]+",state="waiting",service="${name}"\\} \\d+`));
    expect(metrics.body).toContain('# TYPE fleet_job_duration_seconds histogram');
    expect(metrics.body).toContain('# TYPE fleet_jobs_invalid_total counter');
  });

  it('export every metric the Grafana dashboard and the Prometheus rules use', async () => {
    const exported = new Set<string>();
    for (const name of SERVICE_NAMES) {
      const text = (await httpGet(`http://127.0.0.1:${ports[name]}/metrics`)).body;
      for (const m of text.matchAll(/^# TYPE (\S+) /gm)) exported.add(m[1]!);
    }
    const exprs = [
      ...JSON.parse(readFileSync(join(ROOT, 'config/grafana/dashboards/fleet.json'), 'utf8')).panels.flatMap((p: { targets: Array<{ expr: string }> }) => p.targets.map((t) => t.expr)),
      ...(parse(readFileSync(join(ROOT, 'config/prometheus/alerts.yml'), 'utf8')) as { groups: Array<{ rules: Array<{ expr: string }> }> }).groups.flatMap((g) => g.rules.map((r) => r.expr)),
    ];
    const used = new Set(exprs.flatMap((e: string) => [...e.matchAll(/\b((?:fleet|process|nodejs)_[a-z0-9_]+)\b/g)].map((m) => m[1]!.replace(/_(bucket|count|sum)$/, ''))));
    expect(used.size).toBeGreaterThan(10);
    expect([...used].filter((m) => !exported.has(m))).toEqual([]);
  });

  it('the api listens on API_PORT, asks for a key, and answers unknown routes in the error format', async () => {
    const anonymous = await httpGet(`http://127.0.0.1:${apiPort}/api/v1/nothing-here`);
    expect(anonymous.status).toBe(401);
    const res = await fetch(`http://127.0.0.1:${apiPort}/api/v1/nothing-here`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { code: 'not_found', message: 'no route GET /api/v1/nothing-here', details: null } });
    expect((await httpGet(`http://127.0.0.1:${apiPort}/api/v1/openapi.json`)).status).toBe(200);
  });

  it('the fork executor sets the fork queue global concurrency to 5', async () => {
    const redis = new Redis(iso.redisUrl);
    try {
      const producer = new Producer(redis, loadConfig(iso.env));
      expect(await producer.queue(QUEUE.fork).getGlobalConcurrency()).toBe(5);
      await producer.close();
    } finally {
      redis.disconnect();
    }
  });

  it('the alerter stores an alert once per account, rule and period', async () => {
    const redis = new Redis(iso.redisUrl);
    const producer = new Producer(redis, loadConfig(iso.env));
    const alert = { rule: 'daily-loss', severity: 'warning' as const, accountId: 'acc-9', period: '2026-11-20', message: 'daily loss 6%' };
    // Two deliveries under different job ids (say, two scans) still make one alert.
    await producer.enqueue(QUEUE.alerts, 'raise', alert, { jobId: jobId('alert', 'a') });
    await producer.enqueue(QUEUE.alerts, 'raise', alert, { jobId: jobId('alert', 'b') });
    const q = producer.queue(QUEUE.alerts);
    await waitFor('both jobs done', async () => (await q.getJobState('alert.a')) === 'completed' && (await q.getJobState('alert.b')) === 'completed');
    await producer.close();
    redis.disconnect();
    const metrics = await httpGet(`http://127.0.0.1:${ports.alerter}/metrics`);
    expect(metrics.body).toContain('fleet_alerts_total{rule="daily-loss",severity="warning",service="alerter"} 1');
  });

  it.each(SERVICE_NAMES)('%s exits 0 within its deadline on SIGTERM', async (name) => {
    const proc = procs.get(name)!;
    proc.kill('SIGTERM');
    const { code } = await proc.exitWithin(SHUTDOWN_DEADLINE_MS + 2000);
    expect(code).toBe(0);
    expect(proc.output()).toContain('"msg":"shutdown complete"');
  });
});

describe('configuration errors', () => {
  it('stop a service before it starts, naming the key and variable', async () => {
    const proc = new Proc(scriptOf('account-ops'), { ...iso.env, FLEET__TIERS__GEN__MAX_POSITIONS: 'ten' });
    const { code } = await proc.exitWithin(10_000);
    expect(code).toBe(78);
    expect(proc.output()).toContain('tiers.GEN.maxPositions (from FLEET__TIERS__GEN__MAX_POSITIONS)');
  });
});
