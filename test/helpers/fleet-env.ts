import { SERVICE_NAMES, type ServiceName } from '../../config/schema.js';
import { freePort } from '../../scripts/servers/local-servers.js';

/** Free ports for every service's health endpoint and the API, as environment overrides. */
export async function portEnv(): Promise<{ env: Record<string, string>; ports: Record<ServiceName, number>; apiPort: number }> {
  const ports = {} as Record<ServiceName, number>;
  const env: Record<string, string> = {};
  for (const name of SERVICE_NAMES) {
    ports[name] = await freePort();
    env[`FLEET__SERVICES__${name.toUpperCase().replace(/-/g, '_')}__PORT`] = String(ports[name]);
  }
  const apiPort = await freePort();
  env['API_PORT'] = String(apiPort);
  return { env, ports, apiPort };
}
