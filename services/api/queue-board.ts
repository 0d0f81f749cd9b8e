import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyPluginAsync } from 'fastify';
import { QUEUE_NAMES } from '../../shared/contracts/queues.js';
import type { Producer } from '../../shared/queue/producer.js';
import { BOARD_PATH } from './session.js';

/**
 * Bull Board on every queue of the fleet, at /admin/queues. Who may open it is decided by the
 * app's authentication hook (admin keys only), before any of its routes runs.
 *
 * Read-only unless configured otherwise: its retry, clean and delete act on Redis directly, out of
 * the audit chains, and deleting a waiting job would drop an operation the API already accepted.
 * Failed jobs are replayed through the dead letters, which are audited (docs/DECISIONS.md).
 */
export const queueBoard = (producer: Producer, readOnly: boolean): FastifyPluginAsync => async (scope) => {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(BOARD_PATH);
  createBullBoard({
    queues: QUEUE_NAMES.map((name) => new BullMQAdapter(producer.queue(name), { readOnlyMode: readOnly, allowRetries: !readOnly })),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Account fleet queues' } },
  });
  await scope.register(serverAdapter.registerPlugin(), { prefix: BOARD_PATH });
};
