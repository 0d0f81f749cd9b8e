import { QUEUE } from '../../shared/contracts/queues.js';
import { runService } from '../../shared/runtime/service.js';

// Consumers of QUEUE.thresholdCheck, QUEUE.thresholdScan are wired here as their handlers land; until then jobs wait in the queue.
await runService('threshold-monitor', { depthQueues: [QUEUE.thresholdCheck, QUEUE.thresholdScan] }, async () => undefined);
