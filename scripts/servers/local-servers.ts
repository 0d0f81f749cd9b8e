import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signalGroup } from './command-group.js';
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

/** PostgreSQL's server binaries (Debian keeps them out of PATH), if installed. */
function postgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  const dir = versions.map((v) => join(root, v, 'bin')).find((d) => existsSync(join(d, 'initdb')));
  if (dir) return dir;
  const initdb = onPath('initdb');
  return initdb ? join(initdb, '..') : undefined;
}

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

/**
 * A private PostgreSQL cluster for FerretDB, in the temporary directory, durability off (test data).
 * PostgreSQL refuses to run as root, so as root it runs as the 'postgres' user the package creates.
 */
async function startPostgres(dir: string, bin: string): Promise<RunningServer> {
  const pgDir = join(dir, 'pg');
  mkdirSync(pgDir);
  const asUser = isRoot() ? ['runuser', '-u', 'postgres', '--'] : [];
  if (isRoot()) {
    chmodSync(dir, 0o711); // let the postgres user reach its folder inside ours
    spawnSync('chown', ['postgres:postgres', pgDir]);
  }
  const data = join(pgDir, 'data');
  const init = spawnSync(asUser[0] ?? join(bin, 'initdb'), [...asUser.slice(1), ...(asUser.length ? [join(bin, 'initdb')] : []), '-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'], { encoding: 'utf8' });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr || init.stdout}`);
  const port = await freePort();
  const args = ['-D', data, '-p', String(port), '-k', pgDir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=1100'];
  const cmd = asUser.length ? asUser[0]! : join(bin, 'postgres');
  const cmdArgs = asUser.length ? [...asUser.slice(1), join(bin, 'postgres'), ...args] : args;
  return launch('postgres', cmd, cmdArgs, port, pgDir, `postgres://postgres@127.0.0.1:${port}/postgres`);
}

/**
 * mongod when it is on the PATH; otherwise FerretDB, on a private PostgreSQL when one is installed
 * (its queries use indexes), else on SQLite (which scans whole collections: fine for a small run).
 * FLEET_FERRETDB_HANDLER=sqlite|postgresql forces the choice.
 */
export async function startMongo(dir: string): Promise<RunningServer[]> {
  const port = await freePort();
  const url = `mongodb://127.0.0.1:${port}/fleet`;
  const mongod = onPath('mongod');
  if (mongod) {
    return [await launch('mongod', mongod, ['--dbpath', dir, '--port', String(port), '--bind_ip', '127.0.0.1', '--quiet', '--nounixsocket'], port, dir, url)];
  }
  const ferretdb = ensureFerretdb();
  const common = [`--listen-addr=127.0.0.1:${port}`, '--telemetry=disable', '--debug-addr=-', `--state-dir=${dir}`, '--log-level=warn'];
  const forced = process.env['FLEET_FERRETDB_HANDLER'];
  const pgBin = forced === 'sqlite' ? undefined : postgresBin();
  if (forced === 'postgresql' && !pgBin) throw new Error('FLEET_FERRETDB_HANDLER=postgresql but PostgreSQL is not installed (apt-get install -y postgresql)');
  if (pgBin) {
    const postgres = await startPostgres(dir, pgBin);
    // FerretDB v1.24 loses a PostgreSQL connection from its pool (checked out for ever) when a client
    // goes away in the middle of an operation: a killed worker, a timed-out request. Its pool defaults
    // to 50; once every connection is lost it accepts clients and answers nothing (goroutine dumps:
    // every operation waiting for a pool connection, none running). The tests kill processes on
    // purpose, so the pool is made large enough to outlive a whole run.
    const ferret = await launch('ferretdb', ferretdb, ['--handler=postgresql', `--postgresql-url=${postgres.url}?pool_max_conns=1000`, ...common], port, dir, url);
    return [postgres, ferret];
  }
  return [await launch('ferretdb', ferretdb, ['--handler=sqlite', `--sqlite-url=file:${dir}/`, ...common], port, dir, url)];
}

export async function startRedis(dir: string, opts: { appendOnly: boolean }): Promise<RunningServer> {
  const port = await freePort();
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', dir,
    '--save', '',
    '--appendonly', opts.appendOnly ? 'yes' : 'no',
    // Every acknowledged job on disk before the answer: a crash loses no accepted operation.
    ...(opts.appendOnly ? ['--appendfsync', 'always'] : []),
    // BullMQ needs keys never evicted (its production guide); same as docker-compose.
    '--maxmemory-policy', 'noeviction',
    '--daemonize', 'no',
  ];
  return launch('redis', ensureRedisServer(), args, port, dir, `redis://127.0.0.1:${port}`);
}

const CLUSTER_READY_TIMEOUT_MS = 30_000;

/**
 * A local Redis Cluster of `count` masters (no replicas), for tests and for trying the fleet on a
 * cluster: each node in its own folder with its own cluster bus port, the slots spread by
 * `redis-cli --cluster create`, ready once every node reports cluster_state:ok.
 */
export async function startRedisCluster(dir: string, count: number): Promise<{ nodes: RunningServer[]; seeds: string }> {
  const nodes: RunningServer[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const port = await freePort();
      const busPort = await freePort();
      const nodeDir = join(dir, `redis-cluster-${i}`);
      mkdirSync(nodeDir);
      const args = [
        '--port', String(port),
        '--bind', '127.0.0.1',
        '--dir', nodeDir,
        '--save', '',
        '--appendonly', 'no',
        '--maxmemory-policy', 'noeviction',
        '--cluster-enabled', 'yes',
        '--cluster-config-file', join(nodeDir, 'nodes.conf'),
        '--cluster-port', String(busPort),
        '--cluster-node-timeout', '5000',
        '--daemonize', 'no',
      ];
      nodes.push(await launch(`redis-cluster-${i}`, ensureRedisServer(), args, port, nodeDir, `redis://127.0.0.1:${port}`));
    }
    const addresses = nodes.map((n) => new URL(n.url).host);
    const cli = join(ensureRedisServer(), '..', 'redis-cli');
    const created = spawnSync(existsSync(cli) ? cli : 'redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8' });
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stderr || created.stdout}`);
    const deadline = Date.now() + CLUSTER_READY_TIMEOUT_MS;
    const ok = (address: string) => spawnSync(existsSync(cli) ? cli : 'redis-cli', ['-u', `redis://${address}`, 'cluster', 'info'], { encoding: 'utf8' }).stdout.includes('cluster_state:ok');
    while (!addresses.every(ok)) {
      if (Date.now() > deadline) throw new Error(`redis cluster ${addresses.join(',')} not ok within ${CLUSTER_READY_TIMEOUT_MS} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
    return { nodes, seeds: addresses.join(',') };
  } catch (err) {
    await Promise.all(nodes.map((n) => stopServer(n).catch(() => undefined)));
    throw err;
  }
}

/** Each server leads its own process group; the whole group is signalled (runuser and its child alike). */
function signalServer(child: ChildProcess, signal: NodeJS.Signals): void {
  if (!signalGroup(child.pid!, signal)) child.kill(signal);
}

export async function stopServer(server: RunningServer): Promise<void> {
  const child = server.process;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  signalServer(child, 'SIGTERM');
  const timer = setTimeout(() => signalServer(child, 'SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

/** Last resort when this process is exiting: no waiting, just make sure nothing is left running. */
export function killServerNow(server: RunningServer): void {
  if (server.process.exitCode === null) signalServer(server.process, 'SIGKILL');
}

export function makeServerDir(): string {
  return mkdtempSync(join(tmpdir(), 'fleet-servers-'));
}

export function removeServerDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
