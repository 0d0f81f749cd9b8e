import { describe, expect, it } from 'vitest';
import type { StoredEntry } from '../db/journal-repository.js';
import { headCodec } from './shared-heads.js';

describe('a published head as text', () => {
  it('comes back as it went: int64 units as bigints, dates as dates, free text as text', () => {
    const entry = {
      accountId: 'acc-1',
      seq: 7,
      at: new Date('2026-11-02T16:00:00.000Z'),
      after: { cashCents: 123456789012345678n },
      op: { reason: '\u0000date:2020-01-01T00:00:00.000Z', note: '\u0000big:12', other: '\u0000str:x' },
    } as unknown as StoredEntry;
    const back = headCodec.decode(headCodec.encode(entry)) as unknown as typeof entry & { op: Record<string, string>; after: { cashCents: bigint } };
    expect(back).toEqual(entry);
    expect(typeof back.op.reason).toBe('string');
    expect(back.after.cashCents).toBe(123456789012345678n);
  });
});
