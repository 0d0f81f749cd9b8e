import { useMemo, useState } from 'preact/hooks';
import { get, seg } from '../api';
import { Money } from '../components/Money';
import { type Column, Table } from '../components/Table';
import { Tree } from '../components/Tree';
import { ValueChart } from '../components/ValueChart';
import { ErrorText, KeyValues, Time, Val, num } from '../components/Values';
import { accountHref, usePoll } from '../hooks';
import { type Account, type Entry, type Hierarchy, PERIODS, type Page, type Period, type PerformanceReport, type Snapshot } from '../types';

const POLL_MS = 2000;
/** The report reads the journal's trades and every daily point: asked for less often. */
const PERFORMANCE_POLL_MS = 10_000;
const JOURNAL_PAGE = 20;

const AccountLink = ({ id }: { id: string | null }) => (id ? <a href={accountHref(id)}>{id}</a> : <span class="muted">—</span>);

export function AccountPage({ id }: { id: string }) {
  const base = `/api/v1/accounts/${seg(id)}`;
  const account = usePoll(() => get<Account>(base), [id], POLL_MS);
  const hierarchy = usePoll(() => get<Hierarchy>(`${base}/hierarchy`), [id], POLL_MS);

  return (
    <>
      <h1 tabIndex={-1}>Account {id}</h1>
      <ErrorText error={account.error} />
      {account.data ? <Summary a={account.data} /> : !account.error && <p class="muted">Loading…</p>}
      {/* The sections stand from the start (their data follows); an account that cannot be read has none. */}
      {(account.data || !account.error) && (
        <>
          <Balances a={account.data} />
          <Positions a={account.data} />
          <Journal base={base} />
          <Performance id={id} base={base} />
          <section aria-labelledby="hierarchy-h">
            <h2 id="hierarchy-h">Hierarchy</h2>
            <ErrorText error={hierarchy.error} />
            {hierarchy.data && <HierarchyView h={hierarchy.data} id={id} />}
          </section>
        </>
      )}
    </>
  );
}

function Summary({ a }: { a: Account }) {
  return (
    <dl class="facts">
      <div>
        <dt>Name</dt>
        <dd>{a.name}</dd>
      </div>
      <div>
        <dt>Type</dt>
        <dd>{a.type}</dd>
      </div>
      <div>
        <dt>State</dt>
        <dd>
          <span class={`badge state state-${a.state.toLowerCase()}`}>{a.state}</span>
        </dd>
      </div>
      <div>
        <dt>Owner</dt>
        <dd>{a.ownerId ?? '—'}</dd>
      </div>
      <div>
        <dt>Parent</dt>
        <dd>
          <AccountLink id={a.parentId} />
        </dd>
      </div>
      {a.mergedInto && (
        <div>
          <dt>Merged into</dt>
          <dd>
            <AccountLink id={a.mergedInto} />
          </dd>
        </div>
      )}
      <div>
        <dt>Journal seq</dt>
        <dd>{a.seq}</dd>
      </div>
      <div>
        <dt>Opened</dt>
        <dd>
          <Time iso={a.createdAt} />
        </dd>
      </div>
      <div>
        <dt>Updated</dt>
        <dd>
          <Time iso={a.updatedAt} />
        </dd>
      </div>
    </dl>
  );
}

function Balances({ a }: { a: Account | null }) {
  if (!a) return <Section id="balances" title="Balances" />;
  const rows: Array<[string, string]> = [
    ['Cash', a.cash],
    ['Reserved cash', a.reservedCash],
    ['Available cash', a.availableCash],
    ['Positions value', a.positionsValue],
    ['Equity', a.equity],
  ];
  return (
    <section aria-labelledby="balances-h">
      <h2 id="balances-h">Balances</h2>
      <div class="table-wrap" role="region" aria-label="Balances" tabIndex={0}>
        <table class="kv">
          <caption class="sr-only">Balances</caption>
          <tbody>
            {rows.map(([k, v]) => (
              <tr key={k}>
                <th scope="row">{k}</th>
                <td class="num">
                  <Money value={v} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

/** A section whose data is still on its way. */
const Section = ({ id, title }: { id: string; title: string }) => (
  <section aria-labelledby={`${id}-h`}>
    <h2 id={`${id}-h`}>{title}</h2>
    <p class="muted">Loading…</p>
  </section>
);

const positionColumns: Column<Account['positions'][number]>[] = [
  { header: 'Symbol', cell: (p) => p.symbol },
  { header: 'Quantity', cell: (p) => p.quantity, numeric: true },
  { header: 'Cost basis', cell: (p) => <Money value={p.costBasis} />, numeric: true },
  { header: 'Market value', cell: (p) => <Money value={p.marketValue} />, numeric: true },
];

function Positions({ a }: { a: Account | null }) {
  if (!a) return <Section id="positions" title="Positions" />;
  return (
    <section aria-labelledby="positions-h">
      <h2 id="positions-h">Positions</h2>
      <Table label="Positions" columns={positionColumns} rows={a.positions} rowKey={(p) => p.symbol} empty="No positions." />
    </section>
  );
}

const entryColumns: Column<Entry>[] = [
  { header: 'Seq', cell: (e) => e.seq, numeric: true },
  { header: 'At', cell: (e) => <Time iso={e.at} /> },
  { header: 'Kind', cell: (e) => e.kind },
  { header: 'Details', cell: (e) => <Val v={e.details} /> },
  { header: 'Cash after', cell: (e) => <Money value={e.cash} />, numeric: true },
  { header: 'Reserved after', cell: (e) => <Money value={e.reservedCash} />, numeric: true },
  { header: 'Realised P&L', cell: (e) => <Money value={e.realisedPnl} />, numeric: true },
  { header: 'State', cell: (e) => e.state },
  { header: 'Actor', cell: (e) => e.actor },
];

/** The journal, newest first. The API pages backwards only (entries before a seq); the cursors of the pages seen make "Newer". */
function Journal({ base }: { base: string }) {
  const [cursors, setCursors] = useState<number[]>([]);
  const cursor = cursors.at(-1);
  const page = usePoll(() => get<Page<Entry, number>>(`${base}/transactions`, { limit: JOURNAL_PAGE, cursor }), [base, cursor], POLL_MS);
  const older = page.data?.nextCursor ?? null;
  return (
    <section aria-labelledby="journal-h">
      <h2 id="journal-h">Journal</h2>
      <ErrorText error={page.error} />
      {page.data ? <Table label="Journal" columns={entryColumns} rows={page.data.items} rowKey={(e) => String(e.seq)} empty="No entries." /> : !page.error && <p class="muted">Loading…</p>}
      <div class="pager">
        <button type="button" class="secondary" disabled={cursors.length === 0} onClick={() => setCursors(cursors.slice(0, -1))}>
          Newer
        </button>
        <button type="button" class="secondary" disabled={older === null} onClick={() => older !== null && setCursors([...cursors, older])}>
          Older
        </button>
      </div>
    </section>
  );
}

function Performance({ id, base }: { id: string; base: string }) {
  const [period, setPeriod] = useState<Period>('inception');
  const report = usePoll(() => get<PerformanceReport>(`${base}/performance`, { period }), [base, period], PERFORMANCE_POLL_MS);
  // Every daily point of the account; the chart shows those of the report's window.
  const series = usePoll(() => get<{ items: Snapshot[] }>('/api/v1/performance/snapshots', { accountId: id }), [id], PERFORMANCE_POLL_MS);
  const r = report.data;
  const from = r?.from ?? null;
  const to = r?.to ?? null;
  // Memoised: the page re-renders on every poll, and a new array would redraw the chart each time.
  const points = useMemo(() => (series.data?.items ?? []).filter((p) => (from === null || p.date >= from) && (to === null || p.date <= to)), [series.data, from, to]);
  const first = points[0];
  const last = points.at(-1);
  // Metrics are ratios, never money: rounded to read.
  const ratio = (_k: string, v: unknown) => (typeof v === 'number' ? num(v) : <Val v={v} />);

  return (
    <section aria-labelledby="performance-h">
      <h2 id="performance-h">Performance</h2>
      <div class="filters">
        <div class="field">
          <label for="period">Period</label>
          <select id="period" value={period} onChange={(e) => setPeriod(e.currentTarget.value as Period)}>
            {PERIODS.map((p) => (
              <option key={p} value={p}>
                {p}
              </option>
            ))}
          </select>
        </div>
      </div>
      <ErrorText error={report.error ?? series.error} />
      {r && (
        <dl class="facts">
          <div>
            <dt>From</dt>
            <dd>{r.from ?? '—'}</dd>
          </div>
          <div>
            <dt>To</dt>
            <dd>{r.to ?? '—'}</dd>
          </div>
          <div>
            <dt>Daily points</dt>
            <dd>{r.points}</dd>
          </div>
          <div>
            <dt>Start value</dt>
            <dd>
              <Money value={r.startEquity} />
            </dd>
          </div>
          <div>
            <dt>End value</dt>
            <dd>
              <Money value={r.endEquity} />
            </dd>
          </div>
          <div>
            <dt>Money-weighted return</dt>
            <dd>{num(r.moneyWeightedReturn)}</dd>
          </div>
        </dl>
      )}
      <h3>Value</h3>
      <ValueChart points={points} describedBy="value-summary" />
      <p id="value-summary" class="muted">
        {first && last ? `${points.length} daily values, from ${first.equity} on ${first.date} to ${last.equity} on ${last.date}.` : 'No daily values yet: they are recorded by the daily snapshot.'}
      </p>
      {points.length > 0 && (
        <details>
          <summary>Daily values as a table</summary>
          <Table
            label="Daily values"
            columns={[
              { header: 'Day', cell: (p: Snapshot) => p.date },
              { header: 'Value', cell: (p: Snapshot) => <Money value={p.equity} />, numeric: true },
              { header: 'Cash', cell: (p: Snapshot) => <Money value={p.cash} />, numeric: true },
              { header: 'Net flow', cell: (p: Snapshot) => <Money value={p.netFlow} />, numeric: true },
              { header: 'Daily return', cell: (p: Snapshot) => num(p.dailyReturn), numeric: true },
            ]}
            rows={[...points].reverse()}
            rowKey={(p) => p.date}
          />
        </details>
      )}
      {r && (
        <div class="two">
          <div>
            <h3>Metrics</h3>
            <KeyValues data={r.metrics} label="Metrics" format={ratio} />
          </div>
          <div>
            <h3>Benchmark</h3>
            <KeyValues data={r.benchmark} label="Benchmark" format={ratio} />
          </div>
        </div>
      )}
    </section>
  );
}

function HierarchyView({ h, id }: { h: Hierarchy; id: string }) {
  // The API lists ancestors nearest first; shown from the top down.
  const path = [...h.ancestors].reverse();
  return (
    <>
      {path.length > 0 && (
        <nav aria-label="Ancestors" class="crumbs">
          <ol>
            {path.map((a) => (
              <li key={a.id}>
                <a href={accountHref(a.id)}>{a.id}</a> <span class="muted">{a.type}</span>
              </li>
            ))}
            <li aria-current="page">{id}</li>
          </ol>
        </nav>
      )}
      <Tree nodes={h.nodes} currentId={id} />
      {h.truncated && <p class="note">The subtree is larger than the API lists; only its first part is drawn.</p>}
    </>
  );
}
