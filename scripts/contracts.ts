/**
 * `npm run contracts [-- --check]`: writes docs/contracts/<queue>.json, the JSON Schema of every job,
 * generated from the zod contracts. `--check` writes nothing and exits 1 when a file is missing or
 * differs from the code (the test suite runs the same check).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { queueContracts } from '../shared/contracts/json-schema.js';
import { QUEUE_NAMES } from '../shared/contracts/queues.js';

// scripts/ from the sources (tests), dist/scripts/ once built.
const here = dirname(fileURLToPath(import.meta.url));
const ROOT = basename(dirname(here)) === 'dist' ? join(here, '..', '..') : join(here, '..');
export const CONTRACTS_DIR = join(ROOT, 'docs', 'contracts');

/** The files as the code would write them, by name. */
export function contractFiles(): Record<string, string> {
  return Object.fromEntries(QUEUE_NAMES.map((q) => [`${q}.json`, `${JSON.stringify(queueContracts(q), null, 2)}\n`]));
}

/** Names of the checked-in files that are missing or differ from the code. */
export function staleContracts(dir = CONTRACTS_DIR): string[] {
  return Object.entries(contractFiles()).flatMap(([name, text]) => {
    try {
      return readFileSync(join(dir, name), 'utf8') === text ? [] : [name];
    } catch {
      return [name];
    }
  });
}

if (process.argv[1]?.endsWith('contracts.js')) {
  if (process.argv.includes('--check')) {
    const stale = staleContracts();
    if (stale.length > 0) {
      process.stderr.write(`docs/contracts is out of date (${stale.join(', ')}): run npm run contracts\n`);
      process.exit(1);
    }
    process.stdout.write('docs/contracts matches the code\n');
  } else {
    mkdirSync(CONTRACTS_DIR, { recursive: true });
    for (const [name, text] of Object.entries(contractFiles())) writeFileSync(join(CONTRACTS_DIR, name), text);
    process.stdout.write(`wrote ${QUEUE_NAMES.length} files to docs/contracts\n`);
  }
}
