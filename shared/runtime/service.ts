import type { Worker } from 'bullmq';
import type { RedisClient } from '../queue/connection.js';
import type { Connection } from 'mongoose';
import { Counter, type Registry } from 'prom-client';
import { ConfigError, loadConfig } from '../../config/load.js';
import type { Config, ServiceName } from '../../config/schema.js';
import type { QueueName } from '../contracts/queues.js';
import { closeMongo, connectMongo, countCommands, pingMongo } from '../db/connection.js';
import { DeadLetterRepository } from '../db/dead-letter-repository.js';
import { RedisDocLocks } from '../db/doc-locks.js';
import { connectRedis } from '../queue/connection.js';
import { raiseDeadLetterAlert } from '../queue/dead-letter-alert.js';
import { Producer } from '../queue/producer.js';
import { createQueueMetrics, type QueueMetrics } from '../queue/queue-metrics.js';
import { createWorker, drainableOf, type Handlers } from '../queue/worker-runner.js';
import { startHealthServer, type HealthState } from './health-server.js';
import { createLogger, flushLogger, type Logger } from './logger.js';
import { createMetricsRegistry } from './metrics.js';
import { type Clock, SimulationClock, systemClock } from './clock.js';
import { Lifecycle } from './shutdown.js';

/** What every service's main.ts gets to wire its own workers and routes onto. */
export interface Service {
  name: ServiceName;
  config: Config;
  logger: Logger;
  registry: Registry;
  mongo: Connection;
  /** Blocking-safe connection for workers (waits out an outage). */
  workerRedis: RedisClient;
  producer: Producer;
  deadLetters: DeadLetterRepository;
  queueMetrics: QueueMetrics;
  lifecycle: Lifecycle;
  health: HealthState;
  /** The fleet's clock (SPEC §10): wall time, or the simulated time in Redis. */
  clock: Clock;
  startWorker<Q extends QueueName>(queue: Q, handlers: Handlers<Q>): Worker;
}

/**
 * Boots the parts every service shares, in order: config (a bad value stops here, naming the key),
 * logger, metrics, health server (live at once, ready only at the end), MongoDB, Redis, producer,
 * dead-letter store, shutdown. Then `wire` adds the service's own workers; workers start last.
 */
export async function runService(
  name: ServiceName,
  opts: { depthQueues: QueueName[] },
  wire: (svc: Service) => Promise<void>,
): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${name}: ${err.message}\n`);
      process.exit(78); // EX_CONFIG: restarting will not help
    }
    throw err;
  }
  const logger = createLogger({ service: name, level: config.logLevel });
  const registry = createMetricsRegistry(name);
  const health: HealthState = { ready: false };
  const lifecycle = new Lifecycle(logger, config.shutdownDeadlineMs, health);
  lifecycle.installSignalHandlers();
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception');
    void lifecycle.shutdown('uncaughtException', 1);
  });
  process.on('unhandledRejection', (err) => {
    logger.fatal({ err }, 'unhandled rejection');
    void lifecycle.shutdown('unhandledRejection', 1);
  });

  try {
    const httpServer = await startHealthServer({ port: config.services[name].port, registry, state: health, logger });
    lifecycle.addHttp({ name: 'health', close: () => httpServer.close() });

    const mongo = await connectMongo(config.mongodbUrl, config.mongo, logger);
    const commands = new Counter({ name: 'fleet_db_commands_total', help: 'Commands this process sent to MongoDB, by command (find, insert, update, …)', labelNames: ['command'] as const, registers: [registry] });
    countCommands(mongo, (command) => commands.inc({ command }));
    lifecycle.addConnection({ name: 'mongodb', close: () => closeMongo(mongo) });
    const workerRedis = await connectRedis(config, 'worker', name, logger);
    lifecycle.addConnection({ name: 'redis-worker', close: async () => void (await workerRedis.quit()) });
    const producerRedis = await connectRedis(config, 'producer', name, logger);
    lifecycle.addConnection({ name: 'redis-producer', close: async () => void (await producerRedis.quit()) });
    const clock = config.clock.mode === 'simulation' ? await SimulationClock.open(producerRedis, config.queuePrefix) : systemClock;
    if (clock instanceof SimulationClock) lifecycle.addProducer({ name: 'simulation-clock', close: async () => clock.close() });
    const producer = new Producer(producerRedis, config);
    lifecycle.addProducer({ name: 'producer', close: () => producer.close() });

    const deadLetters = new DeadLetterRepository(mongo, raiseDeadLetterAlert(producer));
    // The locks the API and the CLI take too: a reopen here and a discard there are one at a time (FerretDB).
    deadLetters.useLocks(new RedisDocLocks(workerRedis, config.queuePrefix));
    await deadLetters.init();
    const queueMetrics = createQueueMetrics(registry, () => opts.depthQueues.map((q) => producer.queue(q)));
    health.check = async () => (await pingMongo(mongo)) && (await producerRedis.ping()) === 'PONG';

    const workers: Worker[] = [];
    const svc: Service = {
      name,
      config,
      logger,
      registry,
      mongo,
      workerRedis,
      producer,
      deadLetters,
      queueMetrics,
      lifecycle,
      health,
      clock,
      startWorker(queue, handlers) {
        const worker = createWorker(queue, handlers, { connection: workerRedis, config, logger, metrics: queueMetrics, deadLetters });
        lifecycle.addWorker(drainableOf(worker));
        workers.push(worker);
        return worker;
      },
    };
    await wire(svc);
    // Workers take jobs only once everything they depend on is up (they were created paused).
    for (const worker of workers) void worker.run().catch((err: unknown) => logger.error({ err }, 'worker stopped'));
    health.ready = true;
    logger.info({ workers: workers.map((w) => w.name) }, 'service ready');
  } catch (err) {
    logger.fatal({ err }, 'service failed to start');
    await flushLogger(logger);
    await lifecycle.shutdown('startup failure', 1);
  }
}
