import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DIST = join(ROOT, 'dist');

/** A real child process whose output lines are kept for assertions. */
/** Appends every whole line the child writes (stdout and stderr) to `lines`. */
export function collectLines(child: ChildProcess, lines: string[]): void {
  for (const stream of [child.stdout!, child.stderr!]) {
    let buffered = '';
    stream.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const parts = buffered.split('\n');
      buffered = parts.pop() ?? '';
      lines.push(...parts);
    });
  }
}

export class Proc {
  readonly lines: string[] = [];
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(script: string, env: Record<string, string>) {
    this.child = spawn(process.execPath, [script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    collectLines(this.child, this.lines);
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  output(): string {
    return this.lines.join('\n');
  }

  /** The first line matching, once printed; fails at once if the process exits first, with its last output. */
  async waitForLine(pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    const tail = () => this.lines.slice(-8).join('\n');
    for (;;) {
      for (const line of this.lines) {
        const m = line.match(pattern);
        if (m) return m;
      }
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`the process exited (${this.child.exitCode ?? this.child.signalCode}) before printing ${pattern}:\n${tail()}`);
      }
      if (Date.now() > deadline) throw new Error(`no line matching ${pattern} within ${timeoutMs} ms; last output:\n${tail()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Resolves with the exit, or rejects when the process outlives the limit (then kills it). */
  async exitWithin(limitMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.child.kill('SIGKILL');
        reject(new Error(`process still running ${limitMs} ms later:\n${this.lines.slice(-20).join('\n')}`));
      }, limitMs);
    });
    try {
      return await Promise.race([this.exited, limit]);
    } finally {
      clearTimeout(timer);
    }
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }
}

export async function httpGet(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text() };
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
