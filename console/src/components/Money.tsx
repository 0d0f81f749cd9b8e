/**
 * An amount exactly as the API wrote it (a decimal string): never parsed into a float, which would
 * round cents away on large balances. Only its sign is read, to colour a negative amount.
 */
export function Money({ value }: { value: string | null | undefined }) {
  if (value === null || value === undefined) return <span class="muted">—</span>;
  return <span class={value.startsWith('-') ? 'money negative' : 'money'}>{value}</span>;
}
