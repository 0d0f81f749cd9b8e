/**
 * `npm run fleet`: every service as its own child process (`node dist/services/<name>/main.js`),
 * each output line prefixed with the service name, a child that dies restarted with backoff, and
 * on SIGTERM/SIGINT every child stopped gracefully before exiting 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { ConfigError, loadConfig } from '../config/load.js';
import { SERVICE_NAMES, type ServiceName } from '../config/schema.js';

const EXIT_CONFIG = 78;
const RESTART_DELAY_MS_MIN = 500;
const RESTART_DELAY_MS_MAX = 30_000;
/** A child that ran this long is considered healthy again: its next crash restarts quickly. */
const STABLE_AFTER_MS = 30_000;

const distRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = (line: string) => process.stdout.write(`${line}\n`);

interface Slot {
  name: ServiceName;
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
  const width = Math.max(...names.map((n) => n.length));
  const slots = names.map((name): Slot => ({ name, child: undefined, startedAt: 0, restarts: 0, delayMs: RESTART_DELAY_MS_MIN, timer: undefined }));
  let stopping = false;
  let fatal = 0;

  const start = (slot: Slot) => {
    slot.timer = undefined;
    if (stopping) return;
    const child = spawn(process.execPath, ['--enable-source-maps', join(distRoot, 'services', slot.name, 'main.js')], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: process.env,
    });
    slot.child = child;
    slot.startedAt = Date.now();
    pipeLines(child.stdout, slot.name, width, out);
    pipeLines(child.stderr, slot.name, width, (s) => process.stderr.write(`${s}\n`));
    out(`[fleet] started ${slot.name} (pid ${child.pid})`);
    child.once('exit', (code, signal) => {
      slot.child = undefined;
      if (stopping) return;
      if (code === EXIT_CONFIG) {
        out(`[fleet] ${slot.name} refused its configuration; stopping the fleet`);
        fatal = EXIT_CONFIG;
        void stop('configuration error');
        return;
      }
      if (Date.now() - slot.startedAt > STABLE_AFTER_MS) slot.delayMs = RESTART_DELAY_MS_MIN;
      slot.restarts += 1;
      out(`[fleet] ${slot.name} exited (${signal ?? `code ${code}`}); restart ${slot.restarts} in ${slot.delayMs} ms`);
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
        out(`[fleet] ${slot.name} stopped (code ${code})`);
        return code;
      }),
    );
    const unclean = results.filter((c) => c !== 0).length;
    out(`[fleet] all services stopped${unclean ? `; ${unclean} did not exit cleanly` : ''}`);
    process.exit(fatal || (unclean ? 1 : 0));
  };

  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void stop(signal));
  out(`[fleet] starting ${slots.length} services; API on port ${config.apiPort}`);
  slots.forEach(start);
}

await main();
