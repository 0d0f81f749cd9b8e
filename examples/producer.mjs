// A job producer in plain JavaScript: it uses a BullMQ client and nothing of the fleet's code.
// Run: REDIS_URL=redis://127.0.0.1:6379 FLEET_QUEUE_PREFIX=fleet ACCOUNT_ID=acc_… node examples/producer.mjs
import { Queue, QueueEvents } from 'bullmq';

const connection = { url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' };
const prefix = process.env.FLEET_QUEUE_PREFIX ?? 'fleet';
const accountId = process.env.ACCOUNT_ID;
const key = process.env.IDEMPOTENCY_KEY ?? `example-deposit-${Date.now()}`;
if (!accountId) throw new Error('set ACCOUNT_ID to an open account');

const queue = new Queue('account-ops', { connection, prefix });
const events = new QueueEvents('account-ops', { connection, prefix });
await events.waitUntilReady();

/** Enqueues one job under its business id and waits for what the worker made of it. */
async function run(name, data, jobId) {
  const job = await queue.add(name, data, { jobId });
  try {
    // The worker's answer: {"status":"applied",…} or {"status":"refused","code",…}.
    return { jobId, result: await job.waitUntilFinished(events, 30_000) };
  } catch (err) {
    // A payload that breaks the contract is failed for good (never retried) and writes nothing.
    return { jobId, failed: err.message };
  }
}

// The job id is op.<accountId>.<idempotencyKey>: sending the same again is answered by the first run.
const deposit = { accountId, idempotencyKey: key, actor: 'example-producer', amount: '25.00' };
console.log(JSON.stringify(await run('deposit', deposit, `op.${accountId}.${key}`)));
console.log(JSON.stringify(await run('deposit', deposit, `op.${accountId}.${key}`)));
// Money is a decimal string, never a number: this one is refused by the contract.
const malformed = { ...deposit, idempotencyKey: `${key}-bad`, amount: 25 };
console.log(JSON.stringify(await run('deposit', malformed, `op.${accountId}.${key}-bad`)));

await events.close();
await queue.close();
