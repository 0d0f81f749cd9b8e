import { afterEach, describe, expect, it, vi } from 'vitest';
import type { InsertResult } from '../db/model.js';
import { DeadlineError } from '../runtime/deadline.js';
import { GroupInserter } from './group-inserter.js';

describe('GroupInserter', () => {
  afterEach(() => vi.useRealTimers());

  it('sends the appends of one turn together and answers each its own result', async () => {
    const sent: string[][] = [];
    const inserter = new GroupInserter<string>(async (docs) => {
      sent.push(docs);
      return docs.map((d): InsertResult => (d === 'taken' ? 'duplicate' : 'inserted'));
    }, { batchMax: 10, inFlightMax: 1, deadlineMs: 1000 });
    const answers = await Promise.all(['a', 'taken', 'b'].map((d) => inserter.append(d)));
    expect(sent).toEqual([['a', 'taken', 'b']]);
    expect(answers).toEqual(['inserted', 'duplicate', 'inserted']);
  });

  it('fails an insert that is never answered as unknown, and frees its slot for the next', async () => {
    vi.useFakeTimers();
    let calls = 0;
    const inserter = new GroupInserter<string>((docs) => {
      calls++;
      // The first command is lost with its connection: it never settles.
      return calls === 1 ? new Promise<InsertResult[]>(() => undefined) : Promise.resolve(docs.map((): InsertResult => 'inserted'));
    }, { batchMax: 10, inFlightMax: 1, deadlineMs: 500 });
    const lost = inserter.append('first').catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(0);
    const next = inserter.append('second');
    await vi.advanceTimersByTimeAsync(500);
    expect(await lost).toBeInstanceOf(DeadlineError);
    await expect(next).resolves.toBe('inserted');
    expect(calls).toBe(2);
  });
});
