import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureFerretdb, ensureRedisServer, onPath } from './install.js';

export interface RunningServer {
  name: string;
  url: string;
  process: ChildProcess;
  logFile: string;
}

const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** Starts a server in its own process group, so a Ctrl-C meant for the fleet does not stop it early. */
async function launch(name: string, bin: string, args: string[], port: number, dir: string, url: string): Promise<RunningServer> {
  const logFile = join(dir, `${name}.log`);
  const fd = openSync(logFile, 'a');
  const child = spawn(bin, args, { stdio: ['ignore', fd, fd], detached: true });
  closeSync(fd);
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    if (await canConnect(port)) return { name, url, process: child, logFile };
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  const tail = readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n');
  throw new Error(`${name} did not start on port ${port} within ${READY_TIMEOUT_MS} ms:\n${tail}`);
}

export async function startMongo(dir: string): Promise<RunningServer> {
  const port = await freePort();
  const url = `mongodb://127.0.0.1:${port}/fleet`;
  const mongod = onPath('mongod');
  if (mongod) {
    return launch('mongod', mongod, ['--dbpath', dir, '--port', String(port), '--bind_ip', '127.0.0.1', '--quiet', '--nounixsocket'], port, dir, url);
  }
  const ferretdb = ensureFerretdb();
  const args = [
    '--handler=sqlite',
    `--sqlite-url=file:${dir}/`,
    `--listen-addr=127.0.0.1:${port}`,
    '--telemetry=disable',
    '--debug-addr=-',
    `--state-dir=${dir}`,
    '--log-level=warn',
  ];
  return launch('ferretdb', ferretdb, args, port, dir, url);
}

export async function startRedis(dir: string, opts: { appendOnly: boolean }): Promise<RunningServer> {
  const port = await freePort();
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', dir,
    '--save', '',
    '--appendonly', opts.appendOnly ? 'yes' : 'no',
    // BullMQ needs keys never evicted (its production guide); same as docker-compose.
    '--maxmemory-policy', 'noeviction',
    '--daemonize', 'no',
  ];
  return launch('redis', ensureRedisServer(), args, port, dir, `redis://127.0.0.1:${port}`);
}

export async function stopServer(server: RunningServer): Promise<void> {
  const child = server.process;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

export function makeServerDir(): string {
  return mkdtempSync(join(tmpdir(), 'fleet-servers-'));
}

export function removeServerDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
