/**
 * `npm run cli -- dead-letters list|show|replay|discard`: the API's /dead-letters, acting as
 * `cli:<user>` on MongoDB (MONGODB_URL) and the queues (REDIS_URL); replays and discards are audited
 * in the same `dead-letters` chain.
 */
import { userInfo } from 'node:os';
import type { Connection } from 'mongoose';
import type { Config } from '../config/schema.js';
import { DEAD_LETTER_STATES, DeadLetterRepository, type DeadLetterState } from '../shared/db/dead-letter-repository.js';
import { RedisDocLocks } from '../shared/db/doc-locks.js';
import { type DeadLetterActionDeps, DeadLetterError, deadLetterDetail, deadLetterView, discardDeadLetter, replayDeadLetter } from '../shared/ledger/dead-letter-actions.js';
import { openLedgerStores } from '../shared/ledger/stores.js';
import { connectRedis } from '../shared/queue/connection.js';
import { Producer } from '../shared/queue/producer.js';
import type { Logger } from '../shared/runtime/logger.js';

export const DEAD_LETTERS_USAGE = `  npm run cli -- dead-letters list [--queue <queue>] [--name <job>] [--since <day or ISO time>] [--state ${DEAD_LETTER_STATES.join('|')}]
  npm run cli -- dead-letters show <id>
  npm run cli -- dead-letters replay <id>
  npm run cli -- dead-letters discard <id> --reason <text>`;

export interface DeadLetterArgs {
  queue?: string | undefined;
  name?: string | undefined;
  since?: string | undefined;
  state?: string | undefined;
  reason?: string | undefined;
}

const LIST_MAX = 500;

/** Answers the command's exit code; writes its JSON answer to stdout, a refusal to stderr. */
export async function deadLetterCommand(config: Config, logger: Logger, mongo: Connection, sub: string, id: string | undefined, args: DeadLetterArgs, usage: () => Error): Promise<number> {
  const redis = await connectRedis(config, 'producer', 'cli-dead-letters', logger);
  const producer = new Producer(redis, config);
  try {
    const letters = new DeadLetterRepository(mongo);
    letters.useLocks(new RedisDocLocks(redis, config.queuePrefix));
    await letters.init();
    const deps: DeadLetterActionDeps = { letters, producer, audit: (await openLedgerStores(mongo)).audit, now: () => new Date() };
    const actor = `cli:${userInfo().username}`;
    const out = (x: unknown) => void process.stdout.write(`${JSON.stringify(x)}\n`);
    try {
      if (sub === 'list') {
        if (args.state && !(DEAD_LETTER_STATES as readonly string[]).includes(args.state)) throw usage();
        const since = args.since ? new Date(args.since) : undefined;
        if (since && Number.isNaN(since.getTime())) throw usage();
        const page = await letters.list({ queue: args.queue, name: args.name, since, state: args.state as DeadLetterState | undefined }, { limit: LIST_MAX });
        out({ items: page.map(deadLetterView) });
      } else if (sub === 'show' && id) {
        const letter = await letters.get(id);
        if (!letter) throw new DeadLetterError(404, 'not_found', 'no such dead letter');
        out(deadLetterDetail(letter));
      } else if (sub === 'replay' && id) {
        const { letter, outcome } = await replayDeadLetter(deps, id, actor);
        out({ id: letter.id, outcome, state: letter.state, letter: deadLetterView(letter) });
      } else if (sub === 'discard' && id && args.reason?.trim()) {
        out(deadLetterView(await discardDeadLetter(deps, id, actor, args.reason.trim())));
      } else throw usage();
      return 0;
    } catch (err) {
      if (!(err instanceof DeadLetterError)) throw err;
      process.stderr.write(`${err.code}: ${err.message}\n`);
      return 1;
    }
  } finally {
    await producer.close();
    await redis.quit().catch(() => undefined);
  }
}
