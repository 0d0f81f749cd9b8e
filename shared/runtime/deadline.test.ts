import { afterEach, describe, expect, it, vi } from 'vitest';
import { DeadlineError, withDeadline } from './deadline.js';

describe('withDeadline', () => {
  it('answers what the work answers when it settles in time', async () => {
    await expect(withDeadline(Promise.resolve(7), 1000, 'x')).resolves.toBe(7);
    await expect(withDeadline(Promise.reject(new Error('boom')), 1000, 'x')).rejects.toThrow('boom');
  });

  afterEach(() => vi.useRealTimers());

  it('gives up on work that never settles, naming it', async () => {
    vi.useFakeTimers();
    const never = new Promise<number>(() => undefined);
    const answer = withDeadline(never, 20, 'a journal insert').catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(20);
    const err = await answer;
    expect(err).toBeInstanceOf(DeadlineError);
    expect((err as Error).message).toBe('a journal insert: no answer within 20 ms; its outcome is unknown');
  });
});
