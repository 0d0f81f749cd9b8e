/**
 * The one servers script: `node dist/scripts/with-servers.js [--install] [--redis-cluster N] [--] <command…>`.
 * Uses MONGODB_URL and REDIS_URL when set; otherwise starts local servers (mongod if on the PATH,
 * else FerretDB; redis-server) on free ports in a temporary directory, runs the command with the
 * URLs in its environment, then stops the servers and removes the directory, whatever happened.
 * `--redis-cluster N` starts a local Redis Cluster of N masters instead of one Redis (unless
 * REDIS_CLUSTER_NODES is set) and hands the command REDIS_CLUSTER_NODES.
 * `--install` only makes sure the server binaries exist (used by CI before the tests).
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { ensureFerretdb, ensurePromtool, ensureRedisServer, onPath } from './servers/install.js';
import { killServerNow, makeServerDir, removeServerDir, startMongo, startRedis, startRedisCluster, stopServer, type RunningServer } from './servers/local-servers.js';

const log = (msg: string) => process.stderr.write(`[servers] ${msg}\n`);

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args[0] === '--install') {
    if (!process.env['MONGODB_URL'] && !onPath('mongod')) ensureFerretdb();
    if (!process.env['REDIS_URL']) ensureRedisServer();
    ensurePromtool();
    log('server binaries and promtool ready');
    return 0;
  }
  let rest = args;
  let clusterMasters = 0;
  if (rest[0] === '--redis-cluster') {
    clusterMasters = Number(rest[1]);
    if (!Number.isInteger(clusterMasters) || clusterMasters < 3) {
      log('--redis-cluster takes the number of masters, at least 3 (what redis-cli --cluster create requires)');
      return 2;
    }
    rest = rest.slice(2);
  }
  const command = rest[0] === '--' ? rest.slice(1) : rest;
  if (command.length === 0) {
    log('usage: with-servers [--install] [--redis-cluster N] [--] <command> [args…]');
    return 2;
  }

  const env = { ...process.env };
  // The tests validate the Prometheus rules with promtool; found or fetched once, then on PATH.
  try {
    env['PROMTOOL'] = ensurePromtool();
  } catch (err) {
    log(`promtool unavailable: ${(err as Error).message}`);
  }
  const servers: RunningServer[] = [];
  let dir: string | undefined;
  // Stopped in reverse order of start: FerretDB before the PostgreSQL it stores in.
  const cleanup = async () => {
    for (const server of [...servers].reverse()) await stopServer(server).catch(() => undefined);
    if (dir) removeServerDir(dir);
  };
  // If this process dies unexpectedly, take the servers with it (they run in their own groups).
  process.on('exit', () => servers.forEach(killServerNow));

  try {
    const wantCluster = clusterMasters > 0 && !env['REDIS_CLUSTER_NODES'];
    if (!env['MONGODB_URL'] || wantCluster || (!clusterMasters && !env['REDIS_URL'])) dir = makeServerDir();
    if (!env['MONGODB_URL']) {
      const started = await startMongo(dir!);
      servers.push(...started);
      const mongo = started[started.length - 1]!;
      env['MONGODB_URL'] = mongo.url;
      // The PostgreSQL FerretDB stores in, for tests that stop one of its writes to force an interleaving.
      const postgres = started.find((s) => s.name === 'postgres');
      if (postgres) env['FLEET_POSTGRES_URL'] = postgres.url;
      log(`${started.map((s) => s.name).join(' on ')} at ${mongo.url}`);
    }
    if (wantCluster) {
      const cluster = await startRedisCluster(dir!, clusterMasters);
      servers.push(...cluster.nodes);
      env['REDIS_CLUSTER_NODES'] = cluster.seeds;
      log(`redis cluster of ${clusterMasters} masters at ${cluster.seeds}`);
    } else if (!clusterMasters && !env['REDIS_URL']) {
      const redis = await startRedis(dir!, { appendOnly: env['FLEET_REDIS_AOF'] === '1' });
      servers.push(redis);
      env['REDIS_URL'] = redis.url;
      log(`redis-server on ${redis.url}`);
    }
  } catch (err) {
    log((err as Error).message);
    await cleanup();
    return 1;
  }

  const child = spawn(command[0]!, command.slice(1), { stdio: 'inherit', env, shell: false });
  // The child shares our terminal's process group and gets a Ctrl-C itself; a signal sent to us
  // alone (kill, CI) is passed on. Either way we wait for the child, then stop the servers.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (child.exitCode === null) child.kill(signal);
    });
  }
  const code = await new Promise<number>((resolve) => {
    child.once('error', (err) => {
      log(`could not run ${command[0]}: ${err.message}`);
      resolve(127);
    });
    child.once('exit', (exitCode, signal) =>
      resolve(exitCode ?? 128 + (signal ? (constants.signals[signal] ?? 1) : 1)),
    );
  });
  await cleanup();
  return code;
}

process.exitCode = await main();
