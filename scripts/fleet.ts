/**
 * `npm run fleet`: every service as its own child process (`node dist/services/<name>/main.js`),
 * each output line prefixed with the service name, a child that dies restarted with backoff, and
 * on SIGTERM/SIGINT every child stopped gracefully before exiting 0.
 *
 * Replicas: FLEET_REPLICAS=N starts N processes of every service, FLEET_REPLICAS_<SERVICE>=N (e.g.
 * FLEET_REPLICAS_ACCOUNT_OPS) overrides one service. Replica i listens on its service's configured
 * port + i × FLEET_REPLICA_PORT_STRIDE (default 100), the API likewise from API_PORT, so replicas
 * never collide and Prometheus finds each at a predictable address.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { ConfigError, loadConfig } from '../config/load.js';
import { SERVICE_NAMES, type ServiceName } from '../config/schema.js';
import { servicePortEnv } from './servers/ports.js';

const EXIT_CONFIG = 78;
const RESTART_DELAY_MS_MIN = 500;
const RESTART_DELAY_MS_MAX = 30_000;
/** A child that ran this long is considered healthy again: its next crash restarts quickly. */
const STABLE_AFTER_MS = 30_000;

const distRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = (line: string) => process.stdout.write(`${line}\n`);

interface Slot {
  name: ServiceName;
  /** `account-ops` or `account-ops#1`: what its lines are prefixed with. */
  label: string;
  env: NodeJS.ProcessEnv;
  child: ChildProcess | undefined;
  startedAt: number;
  restarts: number;
  delayMs: number;
  timer: NodeJS.Timeout | undefined;
}

function pipeLines(stream: NodeJS.ReadableStream | null, name: string, width: number, write: (s: string) => void) {
  if (!stream) return;
  const prefix = `[${name}]`.padEnd(width + 2);
  createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => write(`${prefix} ${line}`));
}

const replicaCount = z.coerce.number().int().min(1).max(32);

/** How many processes of each service, and the port stride between replicas, from the environment (validated). */
function replicaPlan(env: NodeJS.ProcessEnv, names: ServiceName[]): { count: Record<ServiceName, number>; stride: number } {
  const read = (key: string, schema: z.ZodType<number>, fallback: number) => {
    const text = env[key];
    if (text === undefined || text === '') return fallback;
    const parsed = schema.safeParse(text);
    if (!parsed.success) throw new Error(`${key}=${text}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    return parsed.data;
  };
  const all = read('FLEET_REPLICAS', replicaCount, 1);
  const count = Object.fromEntries(names.map((n) => [n, read(`FLEET_REPLICAS_${n.toUpperCase().replace(/-/g, '_')}`, replicaCount, all)])) as Record<ServiceName, number>;
  return { count, stride: read('FLEET_REPLICA_PORT_STRIDE', z.coerce.number().int().min(1).max(10_000), 100) };
}

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`fleet: ${err.message}\n`);
    process.exit(EXIT_CONFIG);
  }
  const only = process.env['FLEET_SERVICES']?.split(',').filter(Boolean) as ServiceName[] | undefined;
  const names = only?.length ? SERVICE_NAMES.filter((n) => only.includes(n)) : [...SERVICE_NAMES];
  let replicas: ReturnType<typeof replicaPlan>;
  try {
    replicas = replicaPlan(process.env, names);
  } catch (err) {
    process.stderr.write(`fleet: ${(err as Error).message}\n`);
    process.exit(EXIT_CONFIG);
  }
  const slots = names.flatMap((name) =>
    Array.from({ length: replicas.count[name] }, (_, i): Slot => {
      const port = (base: number) => String(base + i * replicas.stride);
      const env = { ...process.env, [servicePortEnv(name)]: port(config.services[name].port), ...(name === 'api' ? { API_PORT: port(config.apiPort) } : {}) };
      return { name, label: replicas.count[name] > 1 ? `${name}#${i}` : name, env, child: undefined, startedAt: 0, restarts: 0, delayMs: RESTART_DELAY_MS_MIN, timer: undefined };
    }),
  );
  const width = Math.max(...slots.map((s) => s.label.length));
  let stopping = false;
  let fatal = 0;

  const start = (slot: Slot) => {
    slot.timer = undefined;
    if (stopping) return;
    const child = spawn(process.execPath, ['--enable-source-maps', join(distRoot, 'services', slot.name, 'main.js')], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: slot.env,
    });
    slot.child = child;
    slot.startedAt = Date.now();
    pipeLines(child.stdout, slot.label, width, out);
    pipeLines(child.stderr, slot.label, width, (s) => process.stderr.write(`${s}\n`));
    out(`[fleet] started ${slot.label} (pid ${child.pid})`);
    child.once('exit', (code, signal) => {
      slot.child = undefined;
      if (stopping) return;
      if (code === EXIT_CONFIG) {
        out(`[fleet] ${slot.label} refused its configuration; stopping the fleet`);
        fatal = EXIT_CONFIG;
        void stop('configuration error');
        return;
      }
      if (Date.now() - slot.startedAt > STABLE_AFTER_MS) slot.delayMs = RESTART_DELAY_MS_MIN;
      slot.restarts += 1;
      out(`[fleet] ${slot.label} exited (${signal ?? `code ${code}`}); restart ${slot.restarts} in ${slot.delayMs} ms`);
      slot.timer = setTimeout(() => start(slot), slot.delayMs);
      slot.delayMs = Math.min(slot.delayMs * 2, RESTART_DELAY_MS_MAX);
    });
  };

  /** Children get SIGTERM and their own deadline; a child still there well after it is killed. */
  const stop = async (reason: string) => {
    if (stopping) return;
    stopping = true;
    out(`[fleet] stopping (${reason})`);
    const killAfterMs = config.shutdownDeadlineMs * 2 + 5000;
    const results = await Promise.all(
      slots.map(async (slot) => {
        clearTimeout(slot.timer);
        const child = slot.child;
        if (!child) return 0;
        const exited = new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? 1)));
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
        const code = await exited;
        clearTimeout(killer);
        out(`[fleet] ${slot.label} stopped (code ${code})`);
        return code;
      }),
    );
    const unclean = results.filter((c) => c !== 0).length;
    out(`[fleet] all services stopped${unclean ? `; ${unclean} did not exit cleanly` : ''}`);
    process.exit(fatal || (unclean ? 1 : 0));
  };

  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void stop(signal));
  const apiPorts = slots.filter((s) => s.name === 'api').map((s) => s.env['API_PORT']);
  out(`[fleet] starting ${slots.length} processes of ${names.length} services; API on port ${apiPorts.join(', ') || 'none'}`);
  slots.forEach(start);
}

await main();
