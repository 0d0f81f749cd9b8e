import { describe, expect, it } from 'vitest';
import { JOBS, jobId, jobSchema } from './jobs.js';
import { QUEUE, QUEUE_NAMES } from './queues.js';

describe('job contracts', () => {
  it('has a schema map for every queue', () => {
    expect(Object.keys(JOBS).sort()).toEqual([...QUEUE_NAMES].sort());
  });

  it('accepts a well-formed deposit and applies no hidden conversion', () => {
    const data = { accountId: 'acc-1', idempotencyKey: 'dep-0001', amount: '100.25', actor: 'api' };
    expect(JOBS[QUEUE.accountOps].deposit.parse(data)).toEqual(data);
  });

  it.each([
    ['operator injection in an id', { accountId: { $ne: null }, idempotencyKey: 'dep-0001', amount: '1.00', actor: 'api' }],
    ['a key with a dot or dollar', { accountId: 'a.b', idempotencyKey: 'dep-0001', amount: '1.00', actor: 'api' }],
    ['a number amount', { accountId: 'acc-1', idempotencyKey: 'dep-0001', amount: 1, actor: 'api' }],
    ['a negative amount', { accountId: 'acc-1', idempotencyKey: 'dep-0001', amount: '-1.00', actor: 'api' }],
    ['a zero amount', { accountId: 'acc-1', idempotencyKey: 'dep-0001', amount: '0.00', actor: 'api' }],
    ['an over-precise amount', { accountId: 'acc-1', idempotencyKey: 'dep-0001', amount: '1.001', actor: 'api' }],
    ['an exponent', { accountId: 'acc-1', idempotencyKey: 'dep-0001', amount: '1e3', actor: 'api' }],
    ['an extra field', { accountId: 'acc-1', idempotencyKey: 'dep-0001', amount: '1.00', admin: true, actor: 'api' }],
    ['a missing key', { accountId: 'acc-1', amount: '1.00', actor: 'api' }],
    ['an oversize id', { accountId: 'a'.repeat(65), idempotencyKey: 'dep-0001', amount: '1.00', actor: 'api' }],
  ])('refuses %s', (_, data) => {
    expect(JOBS[QUEUE.accountOps].deposit.safeParse(data).success).toBe(false);
  });

  it('refuses impossible dates', () => {
    expect(JOBS[QUEUE.snapshot].day.safeParse({ date: '2026-02-30' }).success).toBe(false);
    expect(JOBS[QUEUE.snapshot].day.safeParse({ date: '2026-02-28' }).success).toBe(true);
  });

  it('finds schemas only by own job names', () => {
    expect(jobSchema(QUEUE.accountOps, 'deposit')).toBeDefined();
    expect(jobSchema(QUEUE.accountOps, 'toString')).toBeUndefined();
    expect(jobSchema(QUEUE.accountOps, '__proto__')).toBeUndefined();
  });
});

describe('jobId', () => {
  it('builds ids from business keys', () => {
    expect(jobId('fork', 'acc-1', 42)).toBe('fork.acc-1.42');
  });

  it('refuses parts BullMQ or Redis would misread', () => {
    expect(() => jobId('fork', 'a:b')).toThrow(/job id part/);
    expect(() => jobId('fork', 'a.b')).toThrow(/job id part/);
    expect(() => jobId('fork', '')).toThrow(/job id part/);
    expect(() => jobId('fork')).toThrow(/at least one key part/);
  });
});
