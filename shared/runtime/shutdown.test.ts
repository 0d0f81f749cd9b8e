import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Lifecycle, shutdownBudget } from './shutdown.js';

const silent = pino({ level: 'silent' });

describe('Lifecycle shutdown', () => {
  it('runs the fixed order: readiness, workers, producers, connections, http, exit 0', async () => {
    const events: string[] = [];
    const health = { ready: true };
    let exitCode: number | undefined;
    const life = new Lifecycle(silent, 1000, health, (code) => {
      exitCode = code;
    });
    life.addHttp({ name: 'http', close: async () => void events.push(`http ready=${health.ready}`) });
    life.addConnection({ name: 'mongo', close: async () => void events.push('mongo') });
    life.addProducer({ name: 'producer', close: async () => void events.push('producer') });
    life.addWorker({ name: 'w', close: async (force) => void events.push(`worker force=${force} ready=${health.ready}`) });

    await Promise.all([life.shutdown('SIGTERM'), life.shutdown('SIGINT')]);
    expect(events).toEqual(['worker force=false ready=false', 'producer', 'mongo', 'http ready=false']);
    expect(exitCode).toBe(0);
  });

  it('forces workers closed once the drain budget is spent, then carries on', async () => {
    const events: string[] = [];
    let exitCode: number | undefined;
    const life = new Lifecycle(silent, 200, { ready: true }, (code) => {
      exitCode = code;
    });
    life.addWorker({
      name: 'busy',
      close: (force) => {
        events.push(`close force=${force}`);
        return force ? Promise.resolve() : new Promise(() => undefined); // a job that never finishes
      },
    });
    life.addConnection({ name: 'redis', close: async () => void events.push('redis') });
    const startedAt = Date.now();
    await life.shutdown('SIGTERM');
    expect(events).toEqual(['close force=false', 'close force=true', 'redis']);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(shutdownBudget(200).drainMs - 5);
    expect(exitCode).toBe(0);
  });

  it('exits 1 within the deadline when a close hangs (a MongoDB that stopped answering)', async () => {
    let exitCode: number | undefined;
    let startedAt = 0;
    const exited = new Promise<number>((resolve) => {
      const life = new Lifecycle(silent, 300, { ready: true }, (code) => {
        exitCode = code;
        resolve(Date.now());
      });
      life.addConnection({ name: 'mongodb', close: () => new Promise(() => undefined) });
      life.addConnection({ name: 'redis', close: async () => undefined });
      startedAt = Date.now();
      void life.shutdown('SIGTERM');
    });
    const at = await exited;
    expect(exitCode).toBe(1);
    // At the hard stop, not before (the close got its chance) and not after the deadline.
    expect(at - startedAt).toBeGreaterThanOrEqual(shutdownBudget(300).hardStopMs - 5);
    expect(at - startedAt).toBeLessThanOrEqual(300);
  });

  it('spends the deadline on the drain first, leaving a slice for the closes and the log flush', () => {
    expect(shutdownBudget(10_000)).toEqual({ drainMs: 8000, hardStopMs: 9800, flushMs: 200 });
    const small = shutdownBudget(100);
    expect(small.drainMs).toBeLessThan(small.hardStopMs);
    expect(small.hardStopMs).toBeLessThanOrEqual(100);
  });

  it('keeps going when one resource fails to close', async () => {
    const events: string[] = [];
    const life = new Lifecycle(silent, 100, { ready: true }, () => undefined);
    life.addConnection({ name: 'broken', close: async () => Promise.reject(new Error('boom')) });
    life.addHttp({ name: 'http', close: async () => void events.push('http') });
    await life.shutdown('SIGTERM');
    expect(events).toEqual(['http']);
  });
});
