import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { SimulationClock, setSimulatedTime, simulatedTimeKey, systemClock } from '../shared/runtime/clock.js';
import { dropQueuePrefix, isolatedEnv, waitFor } from './helpers/env.js';
import { portEnv } from './helpers/fleet-env.js';
import { DIST, Proc } from './helpers/processes.js';

const iso = isolatedEnv('clock');
let redis: Redis;
beforeAll(() => {
  redis = new Redis(iso.redisUrl);
});
afterAll(async () => {
  redis.disconnect();
  await dropQueuePrefix(iso, iso.queuePrefix);
});

describe('the fleet clock (SPEC §10)', () => {
  it('live mode reads the wall clock', () => {
    const before = Date.now();
    const now = systemClock.now().getTime();
    expect(now).toBeGreaterThanOrEqual(before);
    expect(now - Date.now()).toBeLessThanOrEqual(0);
    expect(systemClock.today()).toBe(new Date().toISOString().slice(0, 10));
  });

  it('simulation mode: every process reads the instant the simulator keeps in Redis', async () => {
    await setSimulatedTime(redis, iso.queuePrefix, new Date('2025-03-14T21:00:00Z'));
    const a = await SimulationClock.open(new Redis(iso.redisUrl), iso.queuePrefix);
    const b = await SimulationClock.open(new Redis(iso.redisUrl), iso.queuePrefix);
    expect([a.today(), b.now().toISOString()]).toEqual(['2025-03-14', '2025-03-14T21:00:00.000Z']);
    await setSimulatedTime(redis, iso.queuePrefix, new Date('2025-03-17T21:00:00Z'));
    // Each clock polls; both move to the new day without being told.
    await waitFor('both clocks on the new day', async () => a.today() === '2025-03-17' && b.today() === '2025-03-17', 2000, 20);
    a.close();
    b.close();
  });

  it('refuses to start a service in simulation mode before the simulator set the time', async () => {
    const prefix = `${iso.queuePrefix}-unset`;
    expect(await redis.get(simulatedTimeKey(prefix))).toBeNull();
    await expect(SimulationClock.open(redis, prefix)).rejects.toThrow(/is not set/);
  });

  it('a service in simulation mode stamps its work with the simulated time', async () => {
    await setSimulatedTime(redis, iso.queuePrefix, new Date('2025-06-02T21:00:00Z'));
    const { env } = await portEnv();
    const proc = new Proc(join(DIST, 'services', 'alerter', 'main.js'), { ...iso.env, ...env, FLEET__CLOCK__MODE: 'simulation' });
    try {
      await proc.waitForLine(/"msg":"service ready"/, 40_000);
      const { Queue } = await import('bullmq');
      const q = new Queue('alerts', { connection: new Redis(iso.redisUrl, { maxRetriesPerRequest: null }), prefix: iso.queuePrefix });
      await q.add('raise', { rule: 'daily-loss', severity: 'warning', accountId: null, period: '2025-06-02', message: 'sim', details: {} }, { jobId: 'alert.sim.1' });
      const mongoose = await import('mongoose');
      const conn = await mongoose.createConnection(iso.mongodbUrl).asPromise();
      const alert = await waitFor('the stored alert', async () => (await conn.collection('alerts').findOne({})) ?? undefined, 20_000, 100);
      expect(new Date(alert['raisedAt'] as Date).toISOString()).toBe('2025-06-02T21:00:00.000Z');
      await q.close();
      await conn.dropDatabase();
      await conn.close();
    } finally {
      proc.kill('SIGTERM');
      await proc.exitWithin(15_000);
    }
  });
});
