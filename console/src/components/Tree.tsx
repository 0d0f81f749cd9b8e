import type { HierarchyNode } from '../types';
import { accountHref } from '../hooks';

/**
 * An account's subtree (the API's flat, breadth-first list, each node naming its parent) as a
 * nested tree. Every node is a link, so Tab walks it; the arrow keys, Home and End move between
 * nodes too, as in the ARIA tree pattern. The connecting lines are drawn in CSS.
 */
export function Tree({ nodes, currentId }: { nodes: HierarchyNode[]; currentId: string }) {
  const ids = new Set(nodes.map((n) => n.id));
  const children = new Map<string | null, HierarchyNode[]>();
  for (const n of nodes) {
    const parent = n.parentId !== null && ids.has(n.parentId) ? n.parentId : null;
    children.set(parent, [...(children.get(parent) ?? []), n]);
  }

  const onKeyDown = (e: KeyboardEvent) => {
    const tree = e.currentTarget as HTMLElement;
    const links = [...tree.querySelectorAll<HTMLAnchorElement>('a')];
    const at = links.indexOf(document.activeElement as HTMLAnchorElement);
    const to = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: links.length - 1 }[e.key];
    if (to === undefined || at < 0) return;
    e.preventDefault();
    links[Math.max(0, Math.min(links.length - 1, to))]?.focus();
  };

  const item = (n: HierarchyNode, level: number) => {
    const kids = children.get(n.id) ?? [];
    return (
      <li key={n.id} role="treeitem" aria-label={n.id} aria-level={level} aria-expanded={kids.length ? true : undefined} aria-selected={n.id === currentId}>
        <span class="node">
          <a href={accountHref(n.id)} aria-current={n.id === currentId ? 'page' : undefined}>
            {n.id}
          </a>
          {n.name && <span class="node-name">{n.name}</span>}
          <span class="badge">{n.type}</span>
          <span class={`badge state state-${n.state.toLowerCase()}`}>{n.state}</span>
        </span>
        {kids.length > 0 && <ul role="group">{kids.map((k) => item(k, level + 1))}</ul>}
      </li>
    );
  };

  return (
    <ul role="tree" aria-label="Hierarchy" class="tree" onKeyDown={onKeyDown}>
      {(children.get(null) ?? []).map((n) => item(n, 1))}
    </ul>
  );
}
