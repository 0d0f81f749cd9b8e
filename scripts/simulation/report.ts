import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/** What the report shows; every figure is already measured (decimal strings for money). */
export interface ReportData {
  title: string;
  generatedAt: string;
  params: Record<string, string | number>;
  summary: { accounts: Record<string, number>; forks: number; merges: number; churn: number; alerts: number; alertsByRule: Record<string, number>; reviews: Record<string, number>; verify: string };
  /** Children merged back into their parent within 60 days of their fork, and what fired. */
  churn: Array<{ childId: string; parentId: string; days: number; fired: string[]; urgency: string }>;
  days: Array<{ date: string; equity: number; GEN: number; REV: number; COM: number; forks: number; merges: number; alerts: number }>;
  tree: Array<{ id: string; parentId: string | null; tier: string; state: string; equity: string; mergedInto: string | null; name: string }>;
  performers: Array<{ accountId: string; tier: string; state: string; totalReturn: number | null; cagr: number | null; volatility: number | null; sharpe: number | null; maxDrawdown: number | null; equity: string }>;
  alerts: Array<{ raisedAt: string; rule: string; severity: string; accountId: string | null; period: string; message: string }>;
  events: Array<{ date: string; kind: string; detail: string }>;
  opportunities: Array<{ trigger: string; found: number; executed: number; reviewed: number; medianConfidence: number; maxConfidence: number }>;
  /** The fleet under the configured crash scenario, the forecast fans of the largest accounts, and the loss-limit breaches. */
  risk: RiskSection | null;
}

type Quantiles = { p05: string; p25: string; p50: string; p75: string; p95: string };
export interface RiskSection {
  scenario: string;
  definition: unknown;
  total: { equity: string; stressedEquity: string; pnl: string };
  counts: { accounts: number; limitsBreached: number; outOfTrading: number; minCapitalBroken: number; forkEligibilityLost: number; consolidationTriggers: number };
  worst: Array<{
    accountId: string;
    type: string;
    equity: string;
    stressedEquity: string;
    pnl: string;
    consequences: { limitsBreached: Array<{ rule: string; action: string; toState: string | null }>; minCapitalBroken: boolean; forkEligibilityLost: boolean; consolidationTriggers: string[] };
  }>;
  fans: Array<{ accountId: string; tier: string; start: string; asOf: string; quantiles: Quantiles; reachForkLine: number | null; breachMinCapital: number | null; days: Array<{ day: number; date: string } & Quantiles> }>;
  breaches: Array<{ raisedAt: string; accountId: string; rule: string; period: string; did: string }>;
}

const TIER_COLOURS = { domain: ['GEN', 'REV', 'COM'], range: ['#4c78a8', '#f58518', '#54a24b'] };
// Room for the legend on the right within the page's 960 px.
const WIDTH = 780;

/** A vega-lite chart rendered to static SVG here, so the page needs no script and no network. */
async function svgOf(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

export async function charts(d: ReportData): Promise<{ equity: string; tiers: string; activity: string }> {
  const base = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', width: WIDTH, height: 260, config: { font: 'Helvetica, Arial, sans-serif', view: { stroke: null } } } as const;
  const equity = await svgOf({
    ...base,
    title: 'Total equity of the fleet',
    data: { values: d.days },
    mark: { type: 'line', color: '#4c78a8', strokeWidth: 2 },
    encoding: {
      x: { field: 'date', type: 'temporal', title: null },
      y: { field: 'equity', type: 'quantitative', title: 'equity', scale: { zero: false }, axis: { format: '~s' } },
    },
  } as TopLevelSpec);
  const tiers = await svgOf({
    ...base,
    title: 'Open accounts by tier',
    data: { values: d.days.flatMap((x) => (['GEN', 'REV', 'COM'] as const).map((tier) => ({ date: x.date, tier, count: x[tier] }))) },
    mark: { type: 'area' },
    encoding: {
      x: { field: 'date', type: 'temporal', title: null },
      y: { field: 'count', type: 'quantitative', stack: 'zero', title: 'accounts' },
      color: { field: 'tier', type: 'nominal', scale: TIER_COLOURS, sort: ['GEN', 'REV', 'COM'] },
      order: { field: 'tier', sort: 'ascending' },
    },
  } as TopLevelSpec);
  const activity = await svgOf({
    ...base,
    height: 200,
    title: 'Forks, merges and alerts (cumulative)',
    data: { values: d.days.flatMap((x) => [
      { date: x.date, what: 'forks', n: x.forks },
      { date: x.date, what: 'merges', n: x.merges },
      { date: x.date, what: 'alerts', n: x.alerts },
    ]) },
    mark: { type: 'line', interpolate: 'step-after', strokeWidth: 2 },
    encoding: {
      x: { field: 'date', type: 'temporal', title: null },
      y: { field: 'n', type: 'quantitative', title: 'count' },
      color: { field: 'what', type: 'nominal', scale: { domain: ['forks', 'merges', 'alerts'], range: ['#54a24b', '#b279a2', '#e45756'] }, title: null },
    },
  } as TopLevelSpec);
  return { equity, tiers, activity };
}

/** The forecast fans: p05–p95 and p25–p75 bands and the median, one small chart per account (positions only: the figures are in the table). */
async function fanChart(fans: RiskSection['fans']): Promise<string> {
  if (fans.length === 0) return '';
  const values = fans.flatMap((f) => [
    { accountId: f.accountId, date: f.asOf, p05: Number(f.start), p25: Number(f.start), p50: Number(f.start), p75: Number(f.start), p95: Number(f.start) },
    ...f.days.map((d) => ({ accountId: f.accountId, date: d.date, p05: Number(d.p05), p25: Number(d.p25), p50: Number(d.p50), p75: Number(d.p75), p95: Number(d.p95) })),
  ]);
  const x = { field: 'date', type: 'temporal', title: null };
  return svgOf({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Forecast fan of the five largest accounts (p05–p95, p25–p75, median)',
    data: { values },
    facet: { field: 'accountId', type: 'nominal', title: null },
    columns: 3,
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 220,
      height: 140,
      layer: [
        { mark: { type: 'area', color: '#4c78a8', opacity: 0.18 }, encoding: { x, y: { field: 'p05', type: 'quantitative', scale: { zero: false }, axis: { format: '~s' }, title: null }, y2: { field: 'p95' } } },
        { mark: { type: 'area', color: '#4c78a8', opacity: 0.35 }, encoding: { x, y: { field: 'p25', type: 'quantitative' }, y2: { field: 'p75' } } },
        { mark: { type: 'line', color: '#1f3b63', strokeWidth: 1.5 }, encoding: { x, y: { field: 'p50', type: 'quantitative' } } },
      ],
    },
    config: { font: 'Helvetica, Arial, sans-serif', view: { stroke: null } },
  } as TopLevelSpec);
}

function riskHtml(r: RiskSection | null, fan: string): string {
  if (!r) return '';
  const share = (x: number | null) => (x === null ? '—' : `${(x * 100).toFixed(1)} %`);
  const what = (w: RiskSection['worst'][number]) =>
    [
      ...w.consequences.limitsBreached.map((b) => `${b.rule} (${b.toState ? `→ ${b.toState}` : b.action})`),
      ...(w.consequences.minCapitalBroken ? ['below minimum capital'] : []),
      ...(w.consequences.forkEligibilityLost ? ['fork line lost'] : []),
      ...w.consequences.consolidationTriggers.map((t) => `${t} fires`),
    ].join(', ') || '—';
  const c = r.counts;
  return `<h2>Risk</h2>
<h3>The fleet under <code>${esc(r.scenario)}</code> (${esc(JSON.stringify(r.definition))})</h3>
<p>Every open account revalued at the last closes (the stress test of <code>POST /api/v1/risk/stress</code>): equity ${esc(r.total.equity)} → ${esc(r.total.stressedEquity)}, P&amp;L <b>${esc(r.total.pnl)}</b>. Of ${c.accounts} accounts, ${c.limitsBreached} would breach a loss limit (${c.outOfTrading} of them taken out of trading), ${c.minCapitalBroken} would fall below their tier's minimum, ${c.forkEligibilityLost} would lose their fork line, and ${c.consolidationTriggers} would meet a new consolidation trigger.</p>
<table><tr><th>account</th><th>tier</th><th>equity</th><th>stressed</th><th>P&amp;L</th><th>what the fleet's rules would do</th></tr>${r.worst.map((w) => `<tr><td><code>${esc(w.accountId)}</code></td><td>${esc(w.type)}</td><td class="n">${esc(w.equity)}</td><td class="n">${esc(w.stressedEquity)}</td><td class="n">${esc(w.pnl)}</td><td>${esc(what(w))}</td></tr>`).join('')}</table>
<h3>Forecasts</h3>
<div class="chart">${fan}</div>
<table><tr><th>account</th><th>tier</th><th>value (${esc(r.fans[0]?.asOf ?? '')})</th><th>p05</th><th>p50</th><th>p95</th><th>reaches fork line</th><th>below minimum</th></tr>${r.fans.map((f) => `<tr><td><code>${esc(f.accountId)}</code></td><td>${esc(f.tier)}</td><td class="n">${esc(f.start)}</td><td class="n">${esc(f.quantiles.p05)}</td><td class="n">${esc(f.quantiles.p50)}</td><td class="n">${esc(f.quantiles.p95)}</td><td class="n">${share(f.reachForkLine)}</td><td class="n">${share(f.breachMinCapital)}</td></tr>`).join('')}</table>
<h3>Loss-limit breaches (${r.breaches.length})</h3><table><tr><th>raised</th><th>account</th><th>rule</th><th>period</th><th>what it did</th></tr>${r.breaches.map((b) => `<tr><td>${b.raisedAt.slice(0, 10)}</td><td><code>${esc(b.accountId)}</code></td><td>${esc(b.rule)}</td><td>${esc(b.period)}</td><td>${esc(b.did)}</td></tr>`).join('')}</table>`;
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const pct = (x: number | null) => (x === null ? '—' : `${(x * 100).toFixed(2)} %`);
const num = (x: number | null) => (x === null ? '—' : x.toFixed(2));

/** The account tree as nested lists: tier, state, equity; merged accounts say where they went. */
function treeHtml(nodes: ReportData['tree']): string {
  const byParent = new Map<string | null, ReportData['tree']>();
  const ids = new Set(nodes.map((n) => n.id));
  for (const n of nodes) {
    const key = n.parentId && ids.has(n.parentId) ? n.parentId : null;
    byParent.set(key, [...(byParent.get(key) ?? []), n]);
  }
  const render = (parent: string | null, depth: number): string => {
    const kids = byParent.get(parent) ?? [];
    if (kids.length === 0 || depth > 12) return '';
    return `<ul>${kids
      .map((n) => {
        const closed = n.state === 'CLOSED';
        const note = n.mergedInto ? ` → merged into <code>${esc(n.mergedInto)}</code>` : closed ? ' (closed)' : '';
        return `<li class="${closed ? 'closed' : ''}"><span class="tier ${n.tier}">${n.tier}</span> <code>${esc(n.id)}</code> ${esc(n.state)} · ${esc(n.equity)}${note}${render(n.id, depth + 1)}</li>`;
      })
      .join('')}</ul>`;
  };
  return render(null, 0);
}

export async function renderReport(d: ReportData): Promise<string> {
  const c = await charts(d);
  const performerRows = (rows: ReportData['performers']) =>
    rows.map((p) => `<tr><td><code>${esc(p.accountId)}</code></td><td>${p.tier}</td><td>${p.state}</td><td class="n">${esc(p.equity)}</td><td class="n">${pct(p.totalReturn)}</td><td class="n">${pct(p.cagr)}</td><td class="n">${pct(p.volatility)}</td><td class="n">${num(p.sharpe)}</td><td class="n">${pct(p.maxDrawdown)}</td></tr>`).join('');
  const head = '<tr><th>account</th><th>tier</th><th>state</th><th>equity</th><th>total return</th><th>annualised</th><th>volatility</th><th>Sharpe</th><th>max drawdown</th></tr>';
  const ranked = d.performers.filter((p) => p.totalReturn !== null);
  const top = ranked.slice(0, 5);
  const bottom = ranked.slice(-5).reverse();
  const card = (label: string, value: string | number) => `<div class="card"><div class="v">${esc(String(value))}</div><div class="l">${esc(label)}</div></div>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(d.title)}</title>
<style>
body{font:15px/1.45 Helvetica,Arial,sans-serif;color:#222;max-width:960px;margin:2em auto;padding:0 1em}
h1{margin-bottom:.2em} .sub{color:#666;margin-top:0}
.cards{display:flex;gap:.8em;flex-wrap:wrap;margin:1.2em 0}.card{border:1px solid #ddd;border-radius:8px;padding:.6em 1em;min-width:7em}
.card .v{font-size:1.6em;font-weight:600}.card .l{color:#666;font-size:.85em}
table{border-collapse:collapse;width:100%;margin:.6em 0 1.6em}th,td{border-bottom:1px solid #eee;padding:.3em .5em;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
ul{list-style:none;padding-left:1.3em;margin:.2em 0}li{margin:.15em 0}li.closed{color:#999}
.tier{display:inline-block;border-radius:4px;padding:0 .4em;color:#fff;font-size:.8em}.GEN{background:#4c78a8}.REV{background:#f58518}.COM{background:#54a24b}
code{font-size:.9em}.chart{margin:1em 0}
</style></head><body>
<h1>${esc(d.title)}</h1>
<p class="sub">${esc(Object.entries(d.params).map(([k, v]) => `${k} ${v}`).join(' · '))} · generated ${esc(d.generatedAt)}</p>
<div class="cards">${card('Gen-Acc', d.summary.accounts['GEN'] ?? 0)}${card('Rev-Acc', d.summary.accounts['REV'] ?? 0)}${card('Com-Acc', d.summary.accounts['COM'] ?? 0)}${card('forks', d.summary.forks)}${card('merges', d.summary.merges)}${card('churn', d.summary.churn)}${card('alerts', d.summary.alerts)}${card('verify', d.summary.verify)}</div>
<div class="chart">${c.equity}</div>
<div class="chart">${c.tiers}</div>
<div class="chart">${c.activity}</div>
${riskHtml(d.risk, d.risk ? await fanChart(d.risk.fans) : '')}
<h2>Top performers</h2><table>${head}${performerRows(top)}</table>
<h2>Bottom performers</h2><table>${head}${performerRows(bottom)}</table>
<h2>Hierarchy</h2>${treeHtml(d.tree)}
<h2>Consolidation opportunities</h2><table><tr><th>trigger</th><th>found</th><th>executed at once</th><th>sent to review</th><th>median confidence</th><th>highest</th></tr>${d.opportunities.map((o) => `<tr><td>${esc(o.trigger)}</td><td class="n">${o.found}</td><td class="n">${o.executed}</td><td class="n">${o.reviewed}</td><td class="n">${o.medianConfidence.toFixed(2)}</td><td class="n">${o.maxConfidence.toFixed(2)}</td></tr>`).join('')}</table>
<h2>Churn (${d.churn.length})</h2><p>Children merged back into their parent within 60 days of their fork, and the trigger that did it.</p><table><tr><th>child</th><th>parent</th><th>days after fork</th><th>fired</th><th>urgency</th></tr>${d.churn.map((c) => `<tr><td><code>${esc(c.childId)}</code></td><td><code>${esc(c.parentId)}</code></td><td class="n">${c.days}</td><td>${esc(c.fired.join(', '))}</td><td>${esc(c.urgency)}</td></tr>`).join('')}</table>
<h2>Reviews</h2><table><tr>${Object.keys(d.summary.reviews).map((k) => `<th>${esc(k.toLowerCase())}</th>`).join('')}</tr><tr>${Object.values(d.summary.reviews).map((n) => `<td class="n">${n}</td>`).join('')}</tr></table>
<h2>Alerts by rule</h2><table><tr><th>rule</th><th>alerts</th></tr>${Object.entries(d.summary.alertsByRule).map(([r, n]) => `<tr><td>${esc(r)}</td><td class="n">${n}</td></tr>`).join('')}</table>
<h2>Forks and merges</h2><table><tr><th>date</th><th>event</th><th>detail</th></tr>${d.events.map((e) => `<tr><td>${e.date}</td><td>${esc(e.kind)}</td><td>${esc(e.detail)}</td></tr>`).join('')}</table>
<h2>Alerts (${d.alerts.length})</h2><table><tr><th>raised</th><th>rule</th><th>severity</th><th>account</th><th>period</th><th>message</th></tr>${d.alerts.map((a) => `<tr><td>${a.raisedAt.slice(0, 10)}</td><td>${esc(a.rule)}</td><td>${esc(a.severity)}</td><td><code>${esc(a.accountId ?? '')}</code></td><td>${esc(a.period)}</td><td>${esc(a.message)}</td></tr>`).join('')}</table>
</body></html>
`;
}
