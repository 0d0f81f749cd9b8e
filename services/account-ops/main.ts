import { QUEUE } from '../../shared/contracts/queues.js';
import { runService } from '../../shared/runtime/service.js';

// Consumers of QUEUE.accountOps are wired here as their handlers land; until then jobs wait in the queue.
await runService('account-ops', { depthQueues: [QUEUE.accountOps] }, async () => undefined);
