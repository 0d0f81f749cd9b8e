import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import mongoose from 'mongoose';
import { SERVICE_NAMES } from '../config/schema.js';
import { dropQueuePrefix, isolatedEnv, waitFor } from './helpers/env.js';
import { portEnv } from './helpers/fleet-env.js';
import { DIST, Proc, httpGet, isAlive } from './helpers/processes.js';

const iso = isolatedEnv('fleet');
let fleet: Proc | undefined;

afterAll(async () => {
  fleet?.kill('SIGKILL');
  const conn = await mongoose.createConnection(iso.mongodbUrl).asPromise();
  await conn.dropDatabase();
  await conn.close();
  await dropQueuePrefix(iso.redisUrl, iso.queuePrefix);
});

function childPids(proc: Proc, name: string): number[] {
  return proc.lines.flatMap((l) => {
    const m = l.match(new RegExp(`^\\[fleet\\] started ${name} \\(pid (\\d+)\\)`));
    return m ? [Number(m[1])] : [];
  });
}

describe('the fleet launcher', () => {
  it('starts all seven services, restarts a killed one, and stops them all with exit 0', async () => {
    const { env, ports, apiPort } = await portEnv();
    fleet = new Proc(join(DIST, 'scripts', 'fleet.js'), { ...iso.env, ...env, FLEET__SHUTDOWN_DEADLINE_MS: '3000' });
    const ready = (name: (typeof SERVICE_NAMES)[number]) =>
      waitFor(`${name} ready`, async () => (await httpGet(`http://127.0.0.1:${ports[name]}/readyz`)).status === 200, 30_000, 100);
    await Promise.all(SERVICE_NAMES.map(ready));
    expect((await httpGet(`http://127.0.0.1:${apiPort}/api/v1/openapi.json`)).status).toBe(200);
    // Output is prefixed with the service that wrote it.
    expect(fleet.lines.some((l) => /^\[alerter\]\s+\{.*"service":"alerter"/.test(l))).toBe(true);

    const [firstPid] = childPids(fleet, 'alerter');
    process.kill(firstPid!, 'SIGKILL');
    await fleet.waitForLine(/^\[fleet\] alerter exited \(SIGKILL\); restart 1/);
    const secondPid = await waitFor('a new alerter', () => childPids(fleet!, 'alerter')[1]);
    expect(secondPid).not.toBe(firstPid);
    await ready('alerter');

    const allPids = SERVICE_NAMES.map((n) => childPids(fleet!, n).at(-1)!);
    fleet.kill('SIGINT');
    const { code } = await fleet.exitWithin(15_000);
    expect(code).toBe(0);
    expect(fleet.output()).toContain('[fleet] all services stopped');
    for (const name of SERVICE_NAMES) expect(fleet.output()).toContain(`[fleet] ${name} stopped (code 0)`);
    expect(allPids.filter(isAlive)).toEqual([]);
  });
});
