import { readFileSync, statSync } from 'node:fs';

/**
 * Named fault points for fault-injection tests, inert unless a test turns them on:
 * - FLEET_FAULT_POINTS=a,b: the process kills itself at those points with SIGKILL, exactly as a
 *   crash would, with no cleanup;
 * - FLEET_FAULT_FILE=<path>: a file of lines `<point> kill|throw`, read again whenever it changes;
 *   `throw` fails the step with an error (a connection reset, say) for as long as the line is there,
 *   so a test can freeze a saga at a point and lift the fault later by editing or deleting the file.
 * Neither is set in production.
 */
const killed = new Set((process.env['FLEET_FAULT_POINTS'] ?? '').split(',').filter(Boolean));
const file = process.env['FLEET_FAULT_FILE'];
let fromFile = new Map<string, 'kill' | 'throw'>();
let fileStamp = '';

export class InjectedFault extends Error {
  override readonly name = 'InjectedFault';
}

function fileFaults(): Map<string, 'kill' | 'throw'> {
  if (!file) return fromFile;
  let stamp = 'absent';
  try {
    const st = statSync(file);
    stamp = `${st.mtimeMs}:${st.size}`;
  } catch {
    // No file: no faults.
  }
  if (stamp !== fileStamp) {
    fileStamp = stamp;
    fromFile = new Map();
    if (stamp !== 'absent') {
      for (const line of readFileSync(file, 'utf8').split('\n')) {
        const [point, mode] = line.trim().split(/\s+/);
        if (point && (mode === 'kill' || mode === 'throw')) fromFile.set(point, mode);
      }
    }
  }
  return fromFile;
}

export function faultPoint(name: string): void {
  const mode = killed.has(name) ? 'kill' : fileFaults().get(name);
  if (mode === 'kill') process.kill(process.pid, 'SIGKILL');
  if (mode === 'throw') throw new InjectedFault(`fault injected at ${name}`);
}
