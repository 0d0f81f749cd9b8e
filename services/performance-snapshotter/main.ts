import { QUEUE } from '../../shared/contracts/queues.js';
import { runService } from '../../shared/runtime/service.js';

// Consumers of QUEUE.snapshot, QUEUE.retention are wired here as their handlers land; until then jobs wait in the queue.
await runService('performance-snapshotter', { depthQueues: [QUEUE.snapshot, QUEUE.retention] }, async () => undefined);
