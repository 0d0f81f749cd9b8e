import { QUEUE } from '../../shared/contracts/queues.js';
import { runService } from '../../shared/runtime/service.js';

// Consumers of QUEUE.consolidationScan, QUEUE.merge are wired here as their handlers land; until then jobs wait in the queue.
await runService('consolidation-scanner', { depthQueues: [QUEUE.consolidationScan, QUEUE.merge] }, async () => undefined);
