import { afterAll, describe, expect, it } from 'vitest';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mongoose from 'mongoose';
import { loadConfig } from '../config/load.js';
import { SERVICE_NAMES } from '../config/schema.js';
import { jobId } from '../shared/contracts/jobs.js';
import { QUEUE } from '../shared/contracts/queues.js';
import { connectRedis } from '../shared/queue/connection.js';
import { Producer } from '../shared/queue/producer.js';
import { ensureFerretdb } from '../scripts/servers/install.js';
import { freeLowPort } from '../scripts/servers/ports.js';
import { dropQueuePrefix, isolatedEnv, waitFor } from './helpers/env.js';
import { portEnv } from './helpers/fleet-env.js';
import { silentLogger } from './helpers/ledger-harness.js';
import { DIST, Proc, ROOT, collectLines } from './helpers/processes.js';
import { type ProcInfo, descendants, procEnv, stillRunning } from './helpers/process-tree.js';

/**
 * Signals, with real processes (docs/reliability.md, "Stopping on a signal"): SIGTERM to the npm
 * process alone of `npm run fleet`, `npm start` and `npm test` stops every process they started,
 * servers included; a service whose MongoDB is gone still exits within its shutdown deadline.
 */
const iso = isolatedEnv('signals');
const DEADLINE_MS = 3000;
/**
 * Signal to last process gone. The services stop within DEADLINE_MS, the fleet right after them,
 * then with-servers stops its servers one by one (FerretDB, PostgreSQL, Redis: each well under a
 * second when nothing is wrong). Generous against a loaded machine; what it catches is a process
 * that is never stopped, which this bound turns into a failure instead of a hang.
 */
const ALL_GONE_MS = 30_000;

/** The environment of a nested npm: this run's, without what marks it as a vitest worker. */
function npmEnv(extra: Record<string, string>, drop: string[] = []): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const key of Object.keys(env)) if (key.startsWith('VITEST') || key === 'NODE_OPTIONS') delete env[key];
  for (const key of drop) delete env[key];
  return env;
}

/** `npm <args>` as a real child (npm → sh -c → the script), its output kept for the failure message. */
class Npm {
  readonly lines: string[] = [];
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  /** Everything seen under npm so far, so that a failed test still kills what it found. */
  readonly seen = new Map<number, ProcInfo>();

  constructor(args: string[], env: NodeJS.ProcessEnv) {
    this.child = spawn('npm', args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    collectLines(this.child, this.lines);
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
  }

  get pid(): number {
    return this.child.pid!;
  }

  tail(n = 30): string {
    return this.lines.slice(-n).join('\n');
  }

  /** The live descendants now (remembered for cleanup). */
  tree(): ProcInfo[] {
    const now = descendants(this.pid);
    for (const p of now) this.seen.set(p.pid, p);
    return now;
  }

  /** Fails at once if npm is gone before `check` holds: its output says why. */
  async until<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number): Promise<T> {
    return waitFor(() => `${what}; npm said:\n${this.tail()}`, async () => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`npm exited (${this.child.exitCode ?? this.child.signalCode})`);
      return check();
    }, timeoutMs, 200);
  }

  /** After a failure: whatever is still running of what was seen or is there now, killed, so no test leaks processes. */
  killAll(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.tree();
    for (const p of [this.child.pid!, ...[...this.seen.values()].filter(stillRunning).map((p) => p.pid)]) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
}

const readyz = (port: number) => fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false);
const isCommand = (p: ProcInfo, pattern: RegExp) => pattern.test(p.cmdline);
const show = (ps: ProcInfo[]) => ps.map((p) => `${p.pid} ${p.cmdline.slice(0, 120)}`).join('\n');

/**
 * The assertion of this file: SIGTERM to npm's own pid (what `timeout` or a process manager sends),
 * then every process that was under it is gone within ALL_GONE_MS.
 */
async function terminateAndExpectAllGone(npm: Npm, expected: RegExp[]): Promise<void> {
  const tree = npm.tree();
  for (const pattern of expected) expect(tree.some((p) => isCommand(p, pattern)), `${pattern} among\n${show(tree)}`).toBe(true);
  process.kill(npm.pid, 'SIGTERM');
  await waitFor(() => `every process under npm to be gone; still running:\n${show(tree.filter(stillRunning))}\nnpm said:\n${npm.tail()}`, () => tree.every((p) => !stillRunning(p)), ALL_GONE_MS, 100);
  await npm.exited;
}

describe('SIGTERM to npm stops everything it started', () => {
  it('npm run fleet: the fleet, its services and the servers with-servers started', async () => {
    const { env: ports, ports: byService } = await portEnv();
    // No MONGODB_URL or REDIS_URL: with-servers starts FerretDB (on PostgreSQL when installed) and Redis.
    const env = npmEnv(
      { ...ports, ADMIN_API_KEY: 'signals-admin-key-0123456789', LOG_LEVEL: 'warn', FLEET_QUEUE_PREFIX: iso.queuePrefix, FLEET__SHUTDOWN_DEADLINE_MS: String(DEADLINE_MS) },
      ['MONGODB_URL', 'REDIS_URL', 'REDIS_CLUSTER_NODES', 'FLEET_POSTGRES_URL'],
    );
    const npm = new Npm(['run', 'fleet'], env);
    try {
      await npm.until('every service ready', async () => (await Promise.all(SERVICE_NAMES.map((n) => readyz(byService[n])))).every(Boolean), 90_000);
      await terminateAndExpectAllGone(npm, [/with-servers\.js/, /scripts\/fleet\.js/, ...SERVICE_NAMES.map((n) => new RegExp(`services/${n}/main\\.js`)), /ferretdb/, /redis-server/]);
      // Stopped, not killed: the fleet saw every service stop on its own, and with-servers needed no SIGKILL.
      expect(npm.lines.some((l) => l.includes('[fleet] all services stopped') && !l.includes('did not exit cleanly')), npm.tail()).toBe(true);
      expect(npm.lines.filter((l) => l.includes('SIGKILL'))).toEqual([]);
    } finally {
      npm.killAll();
    }
  }, 150_000);

  it('npm start: the simulator, the fleet it started and its services', async () => {
    const reports = mkdtempSync(join(tmpdir(), 'signals-reports-'));
    // The test servers are reused (with-servers starts none). A long enough run to be stopped half way.
    const npm = new Npm(['start', '--', '--accounts', '2', '--days', '60', '--reports', reports], npmEnv({ FLEET__SHUTDOWN_DEADLINE_MS: String(DEADLINE_MS) }));
    let runId: string | undefined;
    try {
      // The simulator picks the services' ports; each one's /readyz is found through its environment.
      await npm.until('the simulation fleet ready', async () => {
        const services = npm.tree().filter((p) => isCommand(p, /services\/[a-z-]+\/main\.js/));
        if (services.length < SERVICE_NAMES.length) return false;
        const ok = await Promise.all(services.map((p) => {
          const name = p.cmdline.match(/services\/([a-z-]+)\/main\.js/)![1]!;
          return readyz(Number(procEnv(p.pid)[`FLEET__SERVICES__${name.toUpperCase().replace(/-/g, '_')}__PORT`]));
        }));
        return ok.every(Boolean);
      }, 90_000);
      runId = npm.lines.map((l) => l.match(/^simulation (\S+):/)?.[1]).find(Boolean);
      await terminateAndExpectAllGone(npm, [/with-servers\.js/, /scripts\/simulate\.js/, /scripts\/fleet\.js/, /services\/account-ops\/main\.js/]);
      expect(npm.lines.some((l) => l.includes('simulation: SIGTERM; stopping the fleet')), npm.tail()).toBe(true);
    } finally {
      npm.killAll();
      rmSync(reports, { recursive: true, force: true });
      if (runId) {
        const url = new URL(iso.mongodbUrl);
        url.pathname = `/${runId.replace(/-/g, '_')}`;
        const conn = await mongoose.createConnection(url.toString()).asPromise();
        await conn.dropDatabase();
        await conn.close();
        await dropQueuePrefix(iso, runId);
      }
    }
  }, 150_000);

  it('npm test: vitest, its workers and a process a running test started', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'signals-hold-'));
    const holdFile = join(dir, 'hold.json');
    // Only the fixture runs (vitest takes the path as a filter), so this file does not run itself.
    const npm = new Npm(['test', '--', 'test/signals-fixture.test.ts'], npmEnv({ FLEET_SIGNALS_HOLD: holdFile }));
    try {
      const hold = await npm.until('the fixture test holding its child', () => existsSync(holdFile) && (JSON.parse(readFileSync(holdFile, 'utf8')) as { worker: number; child: number }), 90_000);
      const tree = npm.tree();
      expect(tree.map((p) => p.pid)).toEqual(expect.arrayContaining([hold.worker, hold.child]));
      await terminateAndExpectAllGone(npm, [/with-servers\.js/, /vitest/]);
    } finally {
      npm.killAll();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 150_000);
});

/** A private FerretDB (SQLite) that the test can SIGKILL or SIGSTOP under a service. */
async function startFerret(dir: string, port: number): Promise<ChildProcess> {
  const ferret = spawn(ensureFerretdb(), ['--handler=sqlite', `--sqlite-url=file:${dir}/`, `--listen-addr=127.0.0.1:${port}`, '--telemetry=disable', '--debug-addr=-', `--state-dir=${dir}`, '--log-level=error'], { stdio: 'ignore' });
  const listening = () => new Promise<boolean>((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
  await waitFor('the private FerretDB to listen', listening, 20_000, 100);
  return ferret;
}

describe('a service whose MongoDB is gone', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
    await dropQueuePrefix(iso, iso.queuePrefix);
  });

  // SIGKILL: connections refused. SIGSTOP: the socket stays open and nothing ever answers, the
  // case where a job and mongoose's close wait for ever; a job is put in flight to be sure of it.
  it.each(['SIGKILL', 'SIGSTOP'] as const)('exits within its shutdown deadline after SIGTERM (FerretDB %s)', async (how) => {
    const dir = mkdtempSync(join(tmpdir(), 'signals-ferret-'));
    const port = await freeLowPort();
    const ferret = await startFerret(dir, port);
    cleanups.push(() => {
      ferret.kill('SIGCONT');
      ferret.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });
    const prefix = `${iso.queuePrefix}-${how.toLowerCase()}`;
    const env = { ...iso.env, ...(await portEnv()).env, MONGODB_URL: `mongodb://127.0.0.1:${port}/signals`, FLEET_QUEUE_PREFIX: prefix, FLEET__SHUTDOWN_DEADLINE_MS: String(DEADLINE_MS) };
    const config = loadConfig(env);
    const producer = new Producer(await connectRedis(config, 'producer', 'signals', silentLogger), config);
    const service = new Proc(join(DIST, 'services', 'account-ops', 'main.js'), env);
    cleanups.push(async () => {
      service.kill('SIGKILL');
      await producer.close();
      await dropQueuePrefix(iso, prefix);
    });
    await service.waitForLine(/"msg":"service ready"/, 40_000);

    ferret.kill(how);
    const open = { accountId: `acc-${how}`, idempotencyKey: `open-${how}`, actor: 'test', tier: 'GEN' as const, name: 'signals', ownerId: 'signals', parentId: null, initialDeposit: '100.00' };
    await producer.enqueue(QUEUE.accountOps, 'open-account', open, { jobId: jobId('signals', how) });
    if (how === 'SIGSTOP') {
      const queue = producer.queue(QUEUE.accountOps);
      await waitFor('the job in flight on the stopped MongoDB', async () => (await queue.getJobState(jobId('signals', how))) === 'active', 15_000, 50);
    }

    const sentAt = Date.now();
    service.kill('SIGTERM');
    // The process's own exit comes at the latest at the hard stop (shutdownBudget); the slack is
    // for the exit itself and for this process noticing it on a busy machine, not for the service.
    const { code, signal } = await service.exitWithin(DEADLINE_MS + 1000);
    const tookMs = Date.now() - sentAt;
    expect(signal, service.output()).toBeNull();
    expect([0, 1]).toContain(code);
    expect(tookMs).toBeLessThan(DEADLINE_MS + 1000);
    // It went through its shutdown, to the end or to the hard stop, rather than crashing out of it.
    expect(service.output()).toMatch(/"msg":"(shutdown complete|shutdown deadline reached with closes still pending; exiting)"/);
  }, 90_000);
});
