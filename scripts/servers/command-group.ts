import { spawn } from 'node:child_process';
import { constants } from 'node:os';

/**
 * Runs with-servers' command as the leader of a process group of its own, so that "stop" means the
 * whole of what it started, not only its first process. Why a group: a signal sent to with-servers
 * alone (a process manager, `timeout`, `kill`; npm forwards SIGTERM to its script, which `exec`s us)
 * used to reach only the command. vitest exits on SIGTERM at once and leaves the processes its tests
 * spawned (a fleet, a service) running; a simulator that dies takes nothing with it. The group gets
 * every signal instead, as a terminal would deliver Ctrl-C, and whatever is left of it once the
 * command has exited is stopped (SIGTERM, then SIGKILL) before the servers go, so no process outlives
 * the servers it uses. Processes that lead groups of their own (servers a nested with-servers starts)
 * are their owner's to stop; the owner is in the group and gets the signal.
 *
 * `detached` is the only way Node offers to start a group, and it also starts a session: the command
 * has no controlling terminal. It still writes to and reads from the terminal it inherits; Ctrl-C
 * still works, because it reaches us (we are in the terminal's foreground group) and we pass it on.
 */
export interface GroupOptions {
  /** After a stop signal, how long the group may take before it is killed (SIGKILL). */
  killAfterMs: number;
  /** How long processes the command left behind after a normal exit get between SIGTERM and SIGKILL. */
  leftoverGraceMs: number;
  log: (msg: string) => void;
}

const POLL_MS = 100;

/** True while any process of the group exists (EPERM: it exists, we may not signal it). */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Signals every process of the group; false when there is no such group (ESRCH: gone already). */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

async function groupGone(pgid: number, withinMs: number): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  while (groupAlive(pgid)) {
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  return true;
}

/** A process's exit code as a shell reports it: its own, or 128 + the number of the signal that ended it. */
export const exitCodeOf = (code: number | null, signal: NodeJS.Signals | null) => code ?? 128 + (signal ? (constants.signals[signal] ?? 1) : 1);

/** Runs the command in its own group; resolves with its exit code once the whole group is gone. */
export async function runCommandGroup(command: string[], env: NodeJS.ProcessEnv, opts: GroupOptions): Promise<number> {
  const child = spawn(command[0]!, command.slice(1), { stdio: 'inherit', env, shell: false, detached: true });
  const pgid = child.pid;
  const exited = new Promise<number>((resolve) => {
    child.once('error', (err) => {
      opts.log(`could not run ${command[0]}: ${err.message}`);
      resolve(127);
    });
    child.once('exit', (code, signal) => resolve(exitCodeOf(code, signal)));
  });
  if (pgid === undefined) return exited;

  let killTimer: NodeJS.Timeout | undefined;
  const kill = () => {
    opts.log(`processes of the command still running ${opts.killAfterMs} ms after the stop signal; SIGKILL`);
    signalGroup(pgid, 'SIGKILL');
  };
  // SIGHUP (the terminal closed) is passed on as SIGTERM: the services stop gracefully on that, and
  // would die on the spot on SIGHUP, which they do not handle.
  const onSignal = (signal: NodeJS.Signals) => {
    signalGroup(pgid, signal === 'SIGHUP' ? 'SIGTERM' : signal);
    killTimer ??= setTimeout(kill, opts.killAfterMs);
  };
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const signal of signals) process.on(signal, onSignal);
  // If with-servers itself ends abruptly (an uncaught error), the group must not survive it either.
  const lastResort = () => signalGroup(pgid, 'SIGKILL');
  process.on('exit', lastResort);

  const code = await exited;
  if (groupAlive(pgid)) {
    if (killTimer) {
      // Stopping already: the rest of the group got the signal too and gets the same time limit.
      await groupGone(pgid, opts.killAfterMs);
    } else {
      opts.log('the command left processes running; stopping them');
      signalGroup(pgid, 'SIGTERM');
      if (!(await groupGone(pgid, opts.leftoverGraceMs))) signalGroup(pgid, 'SIGKILL');
    }
    await groupGone(pgid, 5000);
  }
  clearTimeout(killTimer);
  for (const signal of signals) process.off(signal, onSignal);
  process.off('exit', lastResort);
  return code;
}
