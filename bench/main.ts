/**
 * `npm run bench [-- --quick]`: one JSON line per figure, each beside its raw baseline measured in the
 * same run on the same servers (SPEC §11). Each figure gets its own database and queue prefix.
 */
import { type BenchContext, benchContext } from './context.js';
import { type Figure, apiGet, bulkDeposits, bullmqNoop, dailySnapshot, forkSagas, journalInserts, mediciPeer, postingsE2e, thresholdScan } from './figures.js';

const quick = process.argv.includes('--quick');
/** `--only api,scan`: just those figures (tags: postings, forks, scan, snapshot, api, bulk). */
const onlyArg = process.argv[process.argv.indexOf('--only') + 1];
const only = process.argv.includes('--only') && onlyArg ? new Set(onlyArg.split(',')) : null;
const wanted = (tag: string) => !only || only.has(tag);
const size = quick
  ? { noop: 20_000, inserts: 20_000, operations: 3_000, accounts: 200, medici: 3_000, forks: 40, scan: 100_000, snapshot: 20_000, apiRate: 200, apiSeconds: 10, bulkBatches: 3 }
  : { noop: 100_000, inserts: 100_000, operations: 20_000, accounts: 1_000, medici: 20_000, forks: 200, scan: 100_000, snapshot: 100_000, apiRate: 500, apiSeconds: 30, bulkBatches: 10 };

const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);
const print = (f: Figure) => process.stdout.write(`${JSON.stringify({ ...f, mode: quick ? 'quick' : 'full' })}\n`);

async function run<T>(tag: string, task: (ctx: BenchContext) => Promise<T>, env: Record<string, string> = {}): Promise<T> {
  log(`${tag}…`);
  const ctx = await benchContext(tag, env);
  const started = Date.now();
  try {
    return await task(ctx);
  } finally {
    await ctx.close();
    log(`${tag} took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
}

if (wanted('postings')) {
  // The ratio needs its baselines from the same run.
  const noop = await run('noop', (c) => bullmqNoop(c, size.noop));
  print(noop);
  const inserts = await run('inserts', (c) => journalInserts(c, size.inserts));
  print(inserts);
  const [postings, roundTrips] = await run('postings', (c) => postingsE2e(c, size.operations, size.accounts));
  print(postings!);
  print(roundTrips!);
  const peer = await run('medici', (c) => mediciPeer(c, size.medici));
  print(peer);
  const limit = Math.min(noop.value, inserts.value);
  print({ name: 'postings_e2e_ratio', value: Math.round((postings!.value / limit) * 1000) / 1000, unit: 'ratio', of: 'postings_e2e_per_s / min(bullmq_noop_jobs_per_s, journal_insert_per_s)', limitedBy: noop.value < inserts.value ? 'bullmq_noop_jobs_per_s' : 'journal_insert_per_s', againstPeer: Math.round((postings!.value / peer.value) * 100) / 100 });
}
if (wanted('forks')) for (const f of await run('forks', (c) => forkSagas(c, size.forks))) print(f);
if (wanted('scan')) print(await run('scan', (c) => thresholdScan(c, size.scan)));
if (wanted('snapshot')) print(await run('snapshot', (c) => dailySnapshot(c, size.snapshot, 100_000)));
if (wanted('bulk')) print(await run('bulk', (c) => bulkDeposits(c, size.bulkBatches)));
if (wanted('api')) for (const f of await run('api', (c) => apiGet(c, size.apiRate, size.apiSeconds))) print(f);
log('done');
process.exit(0);
