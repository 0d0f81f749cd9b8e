import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import type { Connection } from 'mongoose';
import { pino } from 'pino';
import { loadConfig } from '../config/load.js';
import type { Config, ServiceName } from '../config/schema.js';
import { SERVICE_NAMES } from '../config/schema.js';
import { closeMongo, connectMongo } from '../shared/db/connection.js';
import { type LedgerStores, openLedgerStores } from '../shared/ledger/stores.js';
import { connectRedis, dropPrefixKeys, type RedisClient } from '../shared/queue/connection.js';
import { Producer } from '../shared/queue/producer.js';
import { freePort } from '../scripts/servers/local-servers.js';

export const silent = pino({ level: 'silent' });
const distRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/** One figure's world: its own database and queue prefix on the shared servers, torn down after. */
export interface BenchContext {
  env: Record<string, string>;
  config: Config;
  mongo: Connection;
  stores: LedgerStores;
  producer: Producer;
  workerRedis: RedisClient;
  procs: ChildProcess[];
  /** Starts a real service process; answers it and the port of its /metrics. */
  spawnService(name: ServiceName, extra?: Record<string, string>): Promise<{ child: ChildProcess; metricsPort: number }>;
  close(): Promise<void>;
}

export async function benchContext(tag: string, extraEnv: Record<string, string> = {}): Promise<BenchContext> {
  const suffix = `${tag}_${randomBytes(3).toString('hex')}`;
  const url = new URL(process.env['MONGODB_URL']!);
  url.pathname = `/bench_${suffix}`;
  const env = { MONGODB_URL: url.toString(), REDIS_URL: process.env['REDIS_URL']!, FLEET_QUEUE_PREFIX: `bench-${suffix}`, LOG_LEVEL: 'warn', ADMIN_API_KEY: 'bench-admin-key-0123456789', ...extraEnv };
  const config = loadConfig(env);
  const mongo = await connectMongo(config.mongodbUrl, { ...config.mongo, maxPoolSize: 50 }, silent);
  const stores = await openLedgerStores(mongo);
  const producerRedis = await connectRedis(config, 'producer', `bench-${tag}`, silent);
  const workerRedis = await connectRedis(config, 'worker', `bench-${tag}`, silent);
  const producer = new Producer(producerRedis, config);
  const procs: ChildProcess[] = [];
  // If the bench itself is stopped, take the services it started with it.
  process.once('exit', () => procs.forEach((p) => p.exitCode === null && p.kill('SIGKILL')));
  return {
    env,
    config,
    mongo,
    stores,
    producer,
    workerRedis,
    procs,
    async spawnService(name, extra = {}) {
      const ports: Record<string, string> = {};
      for (const s of SERVICE_NAMES) ports[`FLEET__SERVICES__${s.toUpperCase().replace(/-/g, '_')}__PORT`] = String(await freePort());
      const child = spawn(process.execPath, [join(distRoot, 'services', name, 'main.js')], { env: { ...process.env, ...env, ...ports, ...extra }, stdio: ['ignore', 'ignore', 'inherit'] });
      procs.push(child);
      const port = ports[`FLEET__SERVICES__${name.toUpperCase().replace(/-/g, '_')}__PORT`];
      await until(
        `${name} ready`,
        async () => {
          if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}) before it was ready`);
          return fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false);
        },
        60_000,
      );
      return { child, metricsPort: Number(port) };
    },
    async close() {
      await Promise.all(procs.map((p) => new Promise<void>((r) => (p.exitCode !== null ? r() : (p.once('exit', () => r()), p.kill('SIGTERM'))))));
      await producer.close();
      producerRedis.disconnect();
      workerRedis.disconnect();
      await mongo.dropDatabase().catch(() => undefined);
      await closeMongo(mongo);
      const redis = await connectRedis(config, 'producer', `bench-${tag}-drop`, silent);
      await dropPrefixKeys(redis, config.queuePrefix);
      redis.disconnect();
    },
  };
}

/** Polls until the check holds, every `everyMs`, failing after `timeoutMs`. */
export async function until(what: string, check: () => Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`bench: ${what} not reached within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export const percentile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((q / 100) * sorted.length) - 1))]!;

/** Runs `task` over items with at most `concurrency` at once. */
export async function pool<T>(items: T[], concurrency: number, task: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await task(items[i]!, i);
      }
    }),
  );
}

/** A counter's value summed over its labels, read from a process's /metrics. */
export async function scrapeCounter(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

/** A counter's values by its first label, read from a process's /metrics. */
export async function scrapeByLabel(port: number, name: string): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const l of text.split('\n')) {
    const m = l.match(new RegExp(`^${name}\\{[a-z_]+="([^"]+)"[^}]*\\} (\\S+)$`));
    if (m) out[m[1]!] = (out[m[1]!] ?? 0) + Number(m[2]);
  }
  return out;
}
