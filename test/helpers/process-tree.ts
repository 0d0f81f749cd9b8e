import { readFileSync, readdirSync } from 'node:fs';

/** A process as /proc shows it; `start` (clock ticks since boot) tells a reused pid from the original. */
export interface ProcInfo {
  pid: number;
  ppid: number;
  pgid: number;
  state: string;
  start: string;
  cmdline: string;
}

/** /proc/<pid>/stat, parsed after the command name (which may hold spaces and parentheses). */
export function procInfo(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
    } catch {
      // gone between the two reads
    }
    // fields[0] is field 3 of stat (state): ppid is 4, pgrp 5, starttime 22.
    return { pid, ppid: Number(fields[1]), pgid: Number(fields[2]), state: fields[0]!, start: fields[19]!, cmdline };
  } catch {
    return undefined;
  }
}

/**
 * Every live descendant of `root` (not root itself), by walking parent pids over /proc. Servers that
 * lead their own process groups are still children of whoever started them, so they are found too.
 */
export function descendants(root: number): ProcInfo[] {
  const all = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map((d) => procInfo(Number(d))).filter((p): p is ProcInfo => p !== undefined);
  const byParent = new Map<number, ProcInfo[]>();
  for (const p of all) byParent.set(p.ppid, [...(byParent.get(p.ppid) ?? []), p]);
  const found: ProcInfo[] = [];
  const walk = (pid: number) => {
    for (const child of byParent.get(pid) ?? []) {
      found.push(child);
      walk(child.pid);
    }
  };
  walk(root);
  return found.filter((p) => p.state !== 'Z');
}

/** Still running: the same process (same start time), and not a zombie waiting to be reaped. */
export function stillRunning(p: ProcInfo): boolean {
  const now = procInfo(p.pid);
  return now !== undefined && now.start === p.start && now.state !== 'Z';
}

/** The environment a process started with (/proc/<pid>/environ). */
export function procEnv(pid: number): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}
