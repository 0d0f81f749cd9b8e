import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Queue } from 'bullmq';
import { SERVICE_NAMES, type ServiceName } from '../../config/schema.js';
import { QUEUE, type QueueName } from '../../shared/contracts/queues.js';
import type { Producer } from '../../shared/queue/producer.js';
import { portEnv } from '../servers/ports.js';

const distRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const IDLE_POLL_MS = 15;
const READY_TIMEOUT_MS = 90_000;

/** Every fleet started and not yet stopped, so that a signal to the simulator can stop them (stopFleets). */
const live = new Set<FleetProcess>();

/** Stops every fleet this process started, including one still starting. */
export async function stopFleets(): Promise<void> {
  await Promise.all([...live].map((f) => f.stop()));
}

/** The whole fleet as separate processes under `npm run fleet`'s supervisor, its output in a log file. */
export class FleetProcess {
  private constructor(
    private readonly child: ChildProcess,
    readonly ports: Record<ServiceName, number>,
    readonly apiPort: number,
  ) {}

  static async start(env: Record<string, string>, logFile: string): Promise<FleetProcess> {
    const { env: ports, ports: byService, apiPort } = await portEnv();
    const log = createWriteStream(logFile);
    const child = spawn(process.execPath, [join(distRoot, 'scripts', 'fleet.js')], { env: { ...process.env, ...env, ...ports }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.pipe(log);
    child.stderr!.pipe(log);
    const fleet = new FleetProcess(child, byService, apiPort);
    live.add(fleet);
    child.once('exit', () => live.delete(fleet));
    await fleet.waitReady();
    return fleet;
  }

  /** Every service answers /readyz (its workers are taking jobs). */
  private async waitReady(): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (const name of SERVICE_NAMES) {
      for (;;) {
        if (this.child.exitCode !== null) throw new Error(`the fleet exited (code ${this.child.exitCode}) while starting; see its log`);
        const ok = await fetch(`http://127.0.0.1:${this.ports[name]}/readyz`).then((r) => r.ok, () => false);
        if (ok) break;
        if (Date.now() > deadline) throw new Error(`${name} was not ready within ${READY_TIMEOUT_MS / 1000} s`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** SIGTERM to the supervisor, which stops every service gracefully. */
  async stop(): Promise<void> {
    // Gone already, by exit or by signal (a killed child's exitCode stays null: it would be waited on for nothing).
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

/** The queues whose work a simulated day waits for. */
export const DAY_QUEUES: QueueName[] = [QUEUE.accountOps, QUEUE.thresholdCheck, QUEUE.thresholdScan, QUEUE.fork, QUEUE.merge, QUEUE.consolidationScan, QUEUE.snapshot, QUEUE.alerts];

/** Work waiting or running on the queues (scheduled repeats are delayed jobs and do not count). */
async function busy(queues: Queue[], skipPaused: Set<string>): Promise<number> {
  const all = await Promise.all(queues.map((q) => q.getJobCounts('waiting', 'active', 'prioritized', 'waiting-children')));
  return all.reduce((n, c, i) => n + (c['active'] ?? 0) + (c['waiting-children'] ?? 0) + (skipPaused.has(queues[i]!.name) ? 0 : (c['waiting'] ?? 0) + (c['prioritized'] ?? 0)), 0);
}

/**
 * Waits until the fleet has nothing left to do on the given queues, seen twice in a row (a handler
 * enqueues its follow-up before it completes, but a poll can fall between two queues' reads).
 * Paused queues may hold waiting work; only their running jobs count. `settled` adds a condition of
 * its own (the simulator's: no process holds unwritten projections).
 */
export async function waitIdle(producer: Producer, names: QueueName[] = DAY_QUEUES, paused: QueueName[] = [], settled: () => Promise<boolean> = async () => true): Promise<void> {
  const queues = names.map((n) => producer.queue(n));
  const skip = new Set<string>(paused);
  // Quiet twice in a row: the confirmation follows at once; only a busy fleet is waited for.
  for (let quiet = 0; quiet < 2; ) {
    if ((await busy(queues, skip)) === 0 && (await settled())) quiet++;
    else {
      quiet = 0;
      await new Promise((r) => setTimeout(r, IDLE_POLL_MS));
    }
  }
}

/**
 * A decision the engine scheduled for "the next favourable window" (a delayed job) comes due on the
 * next simulated day: its delay was measured in wall time, which the simulation does not follow.
 */
export async function promoteDelayed(queue: Queue, jobName: string): Promise<number> {
  let n = 0;
  for (const job of await queue.getDelayed(0, 1000)) {
    if (job.name !== jobName || job.repeatJobKey) continue;
    await job.promote().then(() => n++, () => undefined);
  }
  return n;
}
