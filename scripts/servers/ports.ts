import { SERVICE_NAMES, type ServiceName } from '../../config/schema.js';
import { freePort } from './local-servers.js';

/** `FLEET__SERVICES__ACCOUNT_OPS__PORT`: the variable that sets a service's health and metrics port. */
export const servicePortEnv = (name: ServiceName) => `FLEET__SERVICES__${name.toUpperCase().replace(/-/g, '_')}__PORT`;

/** Free ports for every service's health endpoint and the API, as environment overrides. */
export async function portEnv(): Promise<{ env: Record<string, string>; ports: Record<ServiceName, number>; apiPort: number }> {
  const ports = {} as Record<ServiceName, number>;
  const env: Record<string, string> = {};
  // The OS may hand the same free port out twice in a row: keep asking until every port differs.
  const taken = new Set<number>();
  const distinct = async () => {
    for (;;) {
      const port = await freePort();
      if (!taken.has(port)) {
        taken.add(port);
        return port;
      }
    }
  };
  for (const name of SERVICE_NAMES) {
    ports[name] = await distinct();
    env[servicePortEnv(name)] = String(ports[name]);
  }
  const apiPort = await distinct();
  env['API_PORT'] = String(apiPort);
  return { env, ports, apiPort };
}
