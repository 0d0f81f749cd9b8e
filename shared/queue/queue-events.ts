import { QueueEvents } from 'bullmq';
import type { Config } from '../../config/schema.js';
import type { QueueName } from '../contracts/queues.js';
import { bullPrefix, openRedis } from './connection.js';

/**
 * A queue's completion events. QueueEvents blocks on its connection (XREAD BLOCK), so it gets one of
 * its own, in the worker role: it waits out an outage instead of failing.
 */
export async function openQueueEvents(config: Pick<Config, 'redisUrl' | 'redisClusterNodes' | 'queuePrefix'>, queue: QueueName, name: string): Promise<QueueEvents> {
  const connection = openRedis(config, 'worker', `${name}-events`);
  const events = new QueueEvents(queue, { connection, prefix: bullPrefix(config, queue) });
  // BullMQ leaves a connection it was handed open on close(); this one is ours alone, so it goes too.
  const closeEvents = events.close.bind(events);
  events.close = async () => {
    await closeEvents();
    await connection.quit().catch(() => connection.disconnect());
  };
  await events.waitUntilReady();
  return events;
}
