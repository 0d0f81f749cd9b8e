/**
 * The one servers script: `node dist/scripts/with-servers.js [--install] [--redis-cluster N] [--] <command…>`.
 * Uses MONGODB_URL and REDIS_URL when set; otherwise starts local servers (mongod if on the PATH,
 * else FerretDB; redis-server) on free ports in a temporary directory, runs the command with the
 * URLs in its environment, then stops the servers and removes the directory, whatever happened.
 * `--redis-cluster N` starts a local Redis Cluster of N masters instead of one Redis (unless
 * REDIS_CLUSTER_NODES is set) and hands the command REDIS_CLUSTER_NODES.
 * `--install` only makes sure the server binaries exist (used by CI before the tests).
 * SIGINT/SIGTERM/SIGHUP stop the command's whole process group, then the servers (command-group.ts).
 */
import { loadConfig } from '../config/load.js';
import { exitCodeOf, runCommandGroup } from './servers/command-group.js';
import { ensureChromium, ensureFerretdb, ensurePromtool, ensureRedisServer, onPath } from './servers/install.js';
import { killServerNow, makeServerDir, removeServerDir, startMongo, startRedis, startRedisCluster, stopServer, type RunningServer } from './servers/local-servers.js';

const log = (msg: string) => process.stderr.write(`[servers] ${msg}\n`);

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args[0] === '--install') {
    if (!process.env['MONGODB_URL'] && !onPath('mongod')) ensureFerretdb();
    if (!process.env['REDIS_URL']) ensureRedisServer();
    ensurePromtool();
    ensureChromium();
    log('server binaries, promtool and chromium ready');
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

  // Signals are ours from here to the last server stopped: one that comes while the servers start
  // stops them once they are up (a launch waits at most its readiness timeout), and one during their
  // stop must not kill us half way and leave the rest running. While the command runs,
  // runCommandGroup passes them on to it.
  let stopSignal: NodeJS.Signals | undefined;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      stopSignal ??= signal;
    });
  }
  const stoppedEarly = () => {
    if (stopSignal) log(`${stopSignal} while starting the servers; stopping them`);
    return stopSignal !== undefined;
  };

  const env = { ...process.env };
  // The tests validate the Prometheus rules with promtool; found or fetched once, then on PATH.
  try {
    env['PROMTOOL'] = ensurePromtool();
  } catch (err) {
    log(`promtool unavailable: ${(err as Error).message}`);
  }
  // The console's tests drive Debian's Chromium; found or installed once, then named here.
  try {
    env['CHROMIUM_PATH'] = ensureChromium();
  } catch (err) {
    log(`chromium unavailable: ${(err as Error).message}`);
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
    if (stopSignal) {
      // Stopping already: no more servers; the ones up are stopped below.
    } else if (wantCluster) {
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
  if (stoppedEarly()) {
    await cleanup();
    return exitCodeOf(null, stopSignal!);
  }

  // The command and everything it starts form one process group, stopped as a whole (see
  // command-group.ts). The limit outlasts the fleet's own (it kills a service at twice the shutdown
  // deadline plus 5 s), so a graceful stop is never cut short; it is there for a command that
  // ignores the signal.
  const deadlineMs = (() => {
    try {
      return loadConfig(env).shutdownDeadlineMs;
    } catch {
      return 10_000; // a bad config is the command's to report
    }
  })();
  const code = await runCommandGroup(command, env, { killAfterMs: deadlineMs * 2 + 10_000, leftoverGraceMs: deadlineMs + 2000, log });
  await cleanup();
  return code;
}

process.exitCode = await main();
