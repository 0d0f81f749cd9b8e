import { describe, expect, it } from 'vitest';
import { KeyedMutex } from './keyed-mutex.js';

describe('KeyedMutex', () => {
  it('runs tasks of one key one at a time, in order, and different keys side by side', async () => {
    const m = new KeyedMutex();
    const log: string[] = [];
    const task = (key: string, id: number, ms: number) =>
      m.run(key, async () => {
        log.push(`start ${key}${id}`);
        await new Promise((r) => setTimeout(r, ms));
        log.push(`end ${key}${id}`);
        return id;
      });
    const results = await Promise.all([task('a', 1, 30), task('a', 2, 1), task('b', 1, 5)]);
    expect(results).toEqual([1, 2, 1]);
    expect(log.indexOf('end a1')).toBeLessThan(log.indexOf('start a2'));
    expect(log.indexOf('start b1')).toBeLessThan(log.indexOf('end a1'));
    expect(m.size).toBe(0);
  });

  it('releases the key when a task fails', async () => {
    const m = new KeyedMutex();
    await expect(m.run('k', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await m.run('k', async () => 'next')).toBe('next');
    expect(m.size).toBe(0);
  });
});
