import { useState } from 'preact/hooks';
import { get } from '../api';
import { Money } from '../components/Money';
import { type Column, Table } from '../components/Table';
import { ErrorText } from '../components/Values';
import { accountHref, usePoll } from '../hooks';
import type { Account, Page } from '../types';

const PAGE = 25;
const ACCOUNT_ID = /^[A-Za-z0-9_-]{1,64}$/;

const columns: Column<Account>[] = [
  { header: 'Account', cell: (a) => <a href={accountHref(a.id)}>{a.id}</a> },
  { header: 'Name', cell: (a) => a.name },
  { header: 'Type', cell: (a) => a.type },
  { header: 'State', cell: (a) => <span class={`badge state state-${a.state.toLowerCase()}`}>{a.state}</span> },
  { header: 'Equity', cell: (a) => <Money value={a.equity} />, numeric: true },
  { header: 'Available cash', cell: (a) => <Money value={a.availableCash} />, numeric: true },
  { header: 'Parent', cell: (a) => (a.parentId ? <a href={accountHref(a.parentId)}>{a.parentId}</a> : <span class="muted">—</span>) },
  { header: 'Owner', cell: (a) => a.ownerId ?? <span class="muted">—</span> },
];

export function AccountsPage() {
  const [draft, setDraft] = useState('');
  const [formError, setFormError] = useState<string | null>(null);
  // The API pages forwards by cursor (the last id seen); the cursors behind us make "Previous".
  const [cursors, setCursors] = useState<string[]>([]);
  const cursor = cursors.at(-1);
  const page = usePoll(() => get<Page<Account>>('/api/v1/accounts', { limit: PAGE, cursor }), [cursor]);

  const open = (e: Event) => {
    e.preventDefault();
    const id = draft.trim();
    if (!ACCOUNT_ID.test(id)) return setFormError('An account id is 1 to 64 letters, digits, "_" or "-".');
    setFormError(null);
    location.hash = accountHref(id);
  };

  const next = page.data?.nextCursor ?? null;
  return (
    <>
      <h1 tabIndex={-1}>Accounts</h1>
      <form class="filters" onSubmit={open}>
        <div class="field">
          <label for="open-account">Account id</label>
          <input id="open-account" value={draft} onInput={(e) => setDraft(e.currentTarget.value)} autocomplete="off" spellcheck={false} />
        </div>
        <button type="submit">Open</button>
      </form>
      <ErrorText error={formError ?? page.error} />
      {page.data ? <Table label="Accounts" columns={columns} rows={page.data.items} rowKey={(a) => a.id} empty="No accounts." /> : !page.error && <p class="muted">Loading…</p>}
      <div class="pager">
        <button type="button" class="secondary" disabled={cursors.length === 0} onClick={() => setCursors(cursors.slice(0, -1))}>
          Previous page
        </button>
        <button type="button" class="secondary" disabled={next === null} onClick={() => next && setCursors([...cursors, next])}>
          Next page
        </button>
      </div>
    </>
  );
}
