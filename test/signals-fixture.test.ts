import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

/**
 * test/signals.test.ts runs `npm test -- test/signals-fixture.test.ts` with FLEET_SIGNALS_HOLD set
 * and stops it with SIGTERM half way: this file then plays a test that has started a process of its
 * own (as the fleet and service tests do) and is still running; the child must not outlive the
 * stopped `npm test`, though this test's cleanup never gets to run. In every other run it checks the
 * same child starts and is stopped by its test, which is what a held run skips.
 */
const holdFile = process.env['FLEET_SIGNALS_HOLD'];

describe('a test holding a child process (for signals.test.ts)', () => {
  it(holdFile ? 'waits to be stopped' : 'starts a child and stops it itself', async () => {
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)'], { stdio: 'ignore' });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    expect(child.pid).toBeGreaterThan(0);
    const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_code, signal) => r(signal)));
    if (holdFile) {
      writeFileSync(holdFile, JSON.stringify({ worker: process.pid, child: child.pid }));
      // Until signals.test.ts stops the run; the limit only ends a run nobody stopped.
      await new Promise((r) => setTimeout(r, 100_000));
    }
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
  }, 110_000);
});
