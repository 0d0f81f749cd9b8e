import type { ComponentChildren } from 'preact';

/** An instant as the API gave it, made shorter to read (the exact text stays in `datetime`). */
export function Time({ iso }: { iso: string | null | undefined }) {
  if (!iso) return <span class="muted">—</span>;
  return <time dateTime={iso}>{iso.replace('T', ' ').replace(/\.\d+(?=Z|[+-]\d\d:\d\d$)/, '')}</time>;
}

/** A ratio or score (never money): four significant digits are plenty to read. */
export const num = (v: number | null | undefined) => (v === null || v === undefined ? '—' : Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4))));

const isPlain = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isScalar = (v: unknown) => v === null || ['string', 'number', 'boolean'].includes(typeof v);

/**
 * Any JSON value, generically: scalars as they are (strings, money among them, untouched), lists of
 * scalars joined, a flat object as `key: value` lines, anything deeper as JSON text.
 */
export function Val({ v }: { v: unknown }): ComponentChildren {
  if (v === null || v === undefined) return <span class="muted">—</span>;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v) && v.every(isScalar)) return v.length ? v.map(String).join(', ') : <span class="muted">none</span>;
  if (isPlain(v) && Object.values(v).every(isScalar)) {
    const keys = Object.keys(v);
    if (!keys.length) return <span class="muted">—</span>;
    return (
      <ul class="inline-kv">
        {keys.map((k) => (
          <li key={k}>
            <span class="k">{k}</span>: <Val v={v[k]} />
          </li>
        ))}
      </ul>
    );
  }
  return <code class="json">{JSON.stringify(v, null, 1)}</code>;
}

/** An object as a two-column table, one row a key: what the console shows of inputs and metrics it does not model. */
export function KeyValues({ data, label, format }: { data: Record<string, unknown> | null | undefined; label: string; format?: (key: string, v: unknown) => ComponentChildren }) {
  const keys = Object.keys(data ?? {});
  if (!data || keys.length === 0) return <p class="muted">No {label.toLowerCase()}.</p>;
  return (
    <div class="table-wrap" role="region" aria-label={label} tabIndex={0}>
      <table class="kv">
        <caption class="sr-only">{label}</caption>
        <tbody>
          {keys.map((k) => (
            <tr key={k}>
              <th scope="row">{k}</th>
              <td>{format ? format(k, data[k]) : <Val v={data[k]} />}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** The page's error, announced (role=alert) and shown until the next success. */
export const ErrorText = ({ error }: { error: string | null | undefined }) =>
  error ? (
    <p role="alert" class="error">
      {error}
    </p>
  ) : null;

/** What an action did, announced politely. */
export const StatusText = ({ text }: { text: string | null | undefined }) =>
  text ? (
    <p role="status" class="status">
      {text}
    </p>
  ) : null;
