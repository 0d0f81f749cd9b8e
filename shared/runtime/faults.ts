/**
 * Named crash points for fault-injection tests: when FLEET_FAULT_POINTS lists a point, the process
 * kills itself there with SIGKILL, exactly as a crash would, with no cleanup. Unset in production.
 */
const points = new Set((process.env['FLEET_FAULT_POINTS'] ?? '').split(',').filter(Boolean));

export function faultPoint(name: string): void {
  if (points.has(name)) process.kill(process.pid, 'SIGKILL');
}
