/**
 * `npm run cli -- import accounts|transactions <file.csv>`: a CSV sent as bulk batches of at most
 * 1,000 rows, exactly as `POST /api/v1/bulk/...` sends them (the same planning, the same batch ids),
 * acting as an admin named `cli:<user>`. Running the same file again is a replay: it changes nothing.
 */
import { userInfo } from 'node:os';
import cliProgress from 'cli-progress';
import { parse } from 'csv-parse/sync';
import type { Connection } from 'mongoose';
import type { Config } from '../config/schema.js';
import { QUEUE } from '../shared/contracts/queues.js';
import { BulkBatchRepository, type BulkKind } from '../shared/db/bulk-batch-repository.js';
import { RedisDocLocks } from '../shared/db/doc-locks.js';
import { openLedgerStores } from '../shared/ledger/stores.js';
import { connectRedis } from '../shared/queue/connection.js';
import { openQueueEvents } from '../shared/queue/queue-events.js';
import { Producer } from '../shared/queue/producer.js';
import { canonicalJson, sha256Hex } from '../shared/runtime/canonical-json.js';
import { systemClock } from '../shared/runtime/clock.js';
import type { Logger } from '../shared/runtime/logger.js';
import type { Principal } from '../services/api/auth.js';
import { BULK_ITEMS_MAX, type BulkDeps, batchView, submitBatch } from '../services/api/bulk.js';
import { Operations } from '../services/api/operations.js';

/** A row of the file as a bulk item, with the line it came from (the header is line 1). */
export interface CsvItem {
  line: number;
  item: Record<string, unknown>;
}

/** How long one wait for a batch lasts before the progress bar is redrawn. */
const PROGRESS_EVERY_MS = 1000;

/**
 * CSV rows → bulk items: the columns are the fields of the single-item body (an empty cell is an
 * absent field; `close` is true/false; `config` is JSON). A row without an idempotencyKey gets one
 * from its content and how many equal rows precede it, so the same file imported again, or edited
 * (a row removed, added, moved), is recognised row by row. Two equal rows are two operations; give
 * the column when equal rows must stay apart however the file is edited.
 */
export function itemsFromCsv(kind: 'accounts' | 'transactions', text: string, defaults: { ownerId?: string | undefined } = {}): CsvItem[] {
  const rows = parse(text, { columns: (h: string[]) => h.map((c) => c.trim()), skip_empty_lines: true, trim: true, bom: true }) as Array<Record<string, string>>;
  const seen = new Map<string, number>();
  return rows.map((row, n) => {
    const item: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(row)) {
      if (v === '') continue;
      if (k === 'close') item[k] = v === 'true' ? true : v === 'false' ? false : v;
      else if (k === 'config') item[k] = parseJsonCell(v);
      else item[k] = v;
    }
    if (kind === 'accounts' && item['ownerId'] === undefined && defaults.ownerId) item['ownerId'] = defaults.ownerId;
    const line = n + 2;
    if (item['idempotencyKey'] === undefined) {
      // From the row's content and how many equal rows came before it, not from its line: the same
      // file with a row removed, added or moved is still recognised row by row.
      const content = canonicalJson(item);
      const nth = (seen.get(content) ?? 0) + 1;
      seen.set(content, nth);
      item['idempotencyKey'] = `imp-${sha256Hex(`${content}#${nth}`).slice(0, 32)}`;
    }
    return { line, item };
  });
}

/** A cell that is not JSON is kept as text: the item's validation then refuses it with the reason. */
function parseJsonCell(v: string): unknown {
  try {
    return JSON.parse(v) as unknown;
  } catch {
    return v;
  }
}

export interface ImportSummary {
  rows: number;
  applied: number;
  refused: number;
  batches: string[];
  refusals: Array<{ line: number; code: string; message: string }>;
}

/** Sends the items in batches, one after another, and waits for each before the next. */
export async function importItems(deps: BulkDeps, p: Principal, kind: BulkKind, items: CsvItem[], onProgress: (done: number) => void = () => undefined): Promise<ImportSummary> {
  const summary: ImportSummary = { rows: items.length, applied: 0, refused: 0, batches: [], refusals: [] };
  for (let start = 0; start < items.length; start += BULK_ITEMS_MAX) {
    const chunk = items.slice(start, start + BULK_ITEMS_MAX);
    const batch = await submitBatch(deps, p, kind, chunk.map((c) => c.item));
    summary.batches.push(batch._id);
    const ids = batch.items.filter((i) => !i.refused && i.operationId).map((i) => i.operationId!);
    for (;;) {
      const view = await batchView(deps, (await deps.batches.get(batch._id)) ?? batch);
      onProgress(start + view.counts.applied + view.counts.refused);
      if (view.done) {
        summary.applied += view.counts.applied;
        summary.refused += view.counts.refused;
        for (const i of view.items) if (i.error) summary.refusals.push({ line: chunk[i.index]!.line, ...i.error });
        break;
      }
      await deps.operations.waitMany(ids, Date.now() + PROGRESS_EVERY_MS);
    }
  }
  return summary;
}

/** The command: MongoDB, Redis and the account-ops queue, a progress bar on stderr, the summary on stdout. */
export async function importCommand(config: Config, logger: Logger, mongo: Connection, kind: 'accounts' | 'transactions', text: string, ownerId: string | undefined): Promise<number> {
  const items = itemsFromCsv(kind, text, { ownerId });
  const redis = await connectRedis(config, 'producer', 'cli-import', logger);
  const events = await openQueueEvents(config, QUEUE.accountOps, 'cli-import');
  const producer = new Producer(redis, config);
  const bar = new cliProgress.SingleBar({ format: ' {bar} {value}/{total} rows', hideCursor: true, noTTYOutput: true, notTTYSchedule: 2000, stream: process.stderr }, cliProgress.Presets.shades_classic);
  try {
    const locks = new RedisDocLocks(redis, config.queuePrefix);
    const stores = await openLedgerStores(mongo, { locks });
    const batches = new BulkBatchRepository(mongo);
    batches.useLocks(locks);
    await batches.init();
    const deps: BulkDeps = { stores, clock: systemClock, config, batches, operations: new Operations(producer, events, stores, config.api.waitTimeoutMs) };
    const principal: Principal = { id: `cli:${userInfo().username}`, role: 'admin', ownerId: null };
    bar.start(items.length, 0);
    const summary = await importItems(deps, principal, kind, items, (done) => bar.update(done));
    bar.stop();
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return summary.refused > 0 ? 1 : 0;
  } finally {
    bar.stop();
    await producer.close();
    await events.close();
    await redis.quit().catch(() => undefined);
  }
}
