import { QUEUE_NAMES } from '../../shared/contracts/queues.js';
import { runService } from '../../shared/runtime/service.js';
import { buildApp } from './app.js';

// The API produces onto every queue, so it reports the depth of all of them.
await runService('api', { depthQueues: QUEUE_NAMES }, async (svc) => {
  const app = await buildApp({ logger: svc.logger });
  await app.listen({ port: svc.config.apiPort, host: '0.0.0.0' });
  svc.lifecycle.addHttp({ name: 'api', close: () => app.close() });
});
