import type { AccountRepository, StoredAccount } from '../db/account-repository.js';

/**
 * An account and its descendants, breadth first, bounded in depth and size, keeping only the
 * accounts `keep` allows (a caller's own, for owner scoping). The hierarchy view and stress tests
 * of a subtree read the same walk.
 */
export async function walkSubtree(
  accounts: Pick<AccountRepository, 'children'>,
  root: StoredAccount,
  opts: { depthMax: number; nodesMax: number; keep: (a: StoredAccount) => boolean },
): Promise<{ nodes: Array<{ account: StoredAccount; depth: number }>; truncated: boolean }> {
  const nodes: Array<{ account: StoredAccount; depth: number }> = [];
  let level = [root];
  for (let depth = 0; level.length > 0 && depth <= opts.depthMax && nodes.length < opts.nodesMax; depth++) {
    const next: StoredAccount[] = [];
    for (const a of level) {
      if (nodes.length >= opts.nodesMax) break;
      nodes.push({ account: a, depth });
      if (depth < opts.depthMax) next.push(...(await accounts.children(a._id, opts.nodesMax)).filter(opts.keep));
    }
    level = next;
  }
  return { nodes, truncated: nodes.length >= opts.nodesMax };
}
