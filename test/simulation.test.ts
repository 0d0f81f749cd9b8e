import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { DIST, ROOT } from './helpers/processes.js';

const reports = mkdtempSync(join(tmpdir(), 'sim-reports-'));
afterAll(() => rmSync(reports, { recursive: true, force: true }));

/** The main job as `npm start` runs it (the servers are the test run's), a few accounts for a few days. */
async function run(args: string[]) {
  const child = spawn(process.execPath, [join(DIST, 'scripts', 'simulate.js'), ...args, '--reports', reports], { cwd: ROOT, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  const lines = stdout.trim().split('\n');
  return { code, stdout, stderr, last: JSON.parse(lines[lines.length - 1]!) as { accounts: Record<string, number>; forks: number; merges: number; alerts: number; verify: string; report: string } };
}

describe('npm start: the simulation', () => {
  it('runs the fleet on a simulated market, forks, verifies, reports, and ends with the summary line', async () => {
    const first = await run(['--accounts', '5', '--days', '8', '--seed', '3']);
    expect(first.code, first.stderr.slice(-2000)).toBe(0);
    expect(first.last).toMatchObject({ verify: 'ok', report: expect.stringMatching(/simulation-seed3-.*\.html$/) });
    expect(first.last.forks).toBeGreaterThanOrEqual(1);
    expect(first.last.accounts['REV']).toBeGreaterThanOrEqual(1);
    // Progress went to the terminal, the summary table before the last line.
    expect(first.stderr).toMatch(/days \|/);
    expect(first.stdout).toMatch(/forks/);
    const html = readFileSync(join(ROOT, first.last.report), 'utf8');
    expect((html.match(/<svg/g) ?? []).length).toBeGreaterThanOrEqual(3);
    for (const heading of ['Total equity of the fleet', 'Open accounts by tier', 'Top performers', 'Bottom performers', 'Hierarchy', 'Alerts']) expect(html).toContain(heading);
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org|vega\.github\.io)/);
    // The risk section: the fleet under the configured crash scenario, exact to the cent, and the limit breaches.
    expect(html).toContain('The fleet under <code>market-crash</code>');
    expect(html).toMatch(/P&amp;L <b>-\d+\.\d{2}<\/b>/);
    expect(html).toMatch(/Loss-limit breaches \(\d+\)/);

    const second = await run(['--accounts', '5', '--days', '8', '--seed', '3']);
    expect(second.code).toBe(0);
    const { report: _a, ...a } = first.last;
    const { report: _b, ...b } = second.last;
    expect(b).toEqual(a);
    expect(existsSync(join(ROOT, second.last.report))).toBe(true);
  }, 240_000);
});
