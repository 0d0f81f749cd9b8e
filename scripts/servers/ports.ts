import { createServer } from 'node:net';
import { SERVICE_NAMES, type ServiceName } from '../../config/schema.js';

/** `FLEET__SERVICES__ACCOUNT_OPS__PORT`: the variable that sets a service's health and metrics port. */
export const servicePortEnv = (name: ServiceName) => `FLEET__SERVICES__${name.toUpperCase().replace(/-/g, '_')}__PORT`;

/** The kernel hands out outgoing connections' ports from 32768 up (Linux's default ephemeral range). */
const EPHEMERAL_FIRST = 32_768;
const LOW_FIRST = 20_000;

const canListen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '0.0.0.0', () => srv.close(() => resolve(true)));
  });

/**
 * The first of `size` consecutive free ports below the kernel's ephemeral range (and, with `stride`,
 * the same run `stride` higher), so no outgoing connection of a test's many processes can hold one
 * between the pick and the listen, or while a server that is restarted on it is down: a port the OS
 * picked for us can be taken that way.
 */
async function lowPorts(size: number, stride = 0): Promise<number> {
  const span = size + stride;
  const blocks = Math.floor((EPHEMERAL_FIRST - LOW_FIRST) / (span + size));
  for (;;) {
    // A random block: two test files picking at once rarely meet, and the listen check catches it when they do.
    const first = LOW_FIRST + Math.floor(Math.random() * blocks) * (span + size);
    const block = Array.from({ length: size }, (_, i) => first + i);
    if ((await Promise.all([...block, ...(stride ? block.map((p) => p + stride) : [])].map(canListen))).every(Boolean)) return first;
  }
}

/** One free port below the ephemeral range, for a server a test stops and starts again on it. */
export const freeLowPort = () => lowPorts(1);

/** Free ports for every service's health endpoint and the API, as environment overrides (see lowPorts; `stride` for second replicas). */
export async function portEnv(opts: { stride?: number } = {}): Promise<{ env: Record<string, string>; ports: Record<ServiceName, number>; apiPort: number }> {
  const first = await lowPorts(SERVICE_NAMES.length + 1, opts.stride);
  const ports = Object.fromEntries(SERVICE_NAMES.map((n, i) => [n, first + i])) as Record<ServiceName, number>;
  const env: Record<string, string> = Object.fromEntries(SERVICE_NAMES.map((n) => [servicePortEnv(n), String(ports[n])]));
  const apiPort = first + SERVICE_NAMES.length;
  env['API_PORT'] = String(apiPort);
  return { env, ports, apiPort };
}
