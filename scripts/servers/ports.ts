import { SERVICE_NAMES, type ServiceName } from '../../config/schema.js';
import { freePort } from './local-servers.js';

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
    env[`FLEET__SERVICES__${name.toUpperCase().replace(/-/g, '_')}__PORT`] = String(ports[name]);
  }
  const apiPort = await distinct();
  env['API_PORT'] = String(apiPort);
  return { env, ports, apiPort };
}
