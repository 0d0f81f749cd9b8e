import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import type { Logger } from './logger.js';

export interface HealthState {
  /** False once shutdown begins or while a dependency is down, so traffic drains away. */
  ready: boolean;
  /** Optional deeper readiness probe (MongoDB and Redis answer). */
  check?: () => Promise<boolean>;
}

export interface HealthServer {
  server: Server;
  port: number;
  close(): Promise<void>;
}

/** `/metrics`, `/healthz` (the process lives) and `/readyz` (it should get work) on one port. */
export async function startHealthServer(opts: {
  port: number;
  host?: string;
  registry: Registry;
  state: HealthState;
  logger: Logger;
}): Promise<HealthServer> {
  const { registry, state, logger } = opts;
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const reply = (status: number, body: string, type = 'application/json') => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, '{"error":"method not allowed"}');
    if (path === '/healthz') return reply(200, '{"status":"ok"}');
    if (path === '/readyz') {
      const probe = state.ready && state.check ? state.check() : Promise.resolve(state.ready);
      return void probe
        .catch(() => false)
        .then((ok) => reply(ok ? 200 : 503, JSON.stringify({ status: ok ? 'ready' : 'not ready' })));
    }
    if (path === '/metrics') {
      return void registry
        .metrics()
        .then((text) => reply(200, text, registry.contentType))
        .catch((err: unknown) => {
          logger.error({ err }, 'metrics collection failed');
          reply(500, '{"error":"metrics collection failed"}');
        });
    }
    reply(404, '{"error":"not found"}');
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '0.0.0.0', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  logger.info({ port }, 'health server listening');
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
