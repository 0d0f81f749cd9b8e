/**
 * The one way the console talks to the API: same origin, the session cookie, and the
 * `x-fleet-console` header the server asks for before it accepts that cookie (a CSRF defence:
 * a cross-site form cannot set a custom header).
 */

export type Role = 'viewer' | 'operator' | 'admin';
export interface Principal {
  id: string;
  role: Role;
  ownerId: string | null;
}

const RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };
/** Whether the principal's role is at least `role` (the server checks again; this only hides controls). */
export const atLeast = (p: Principal, role: Role) => RANK[p.role] >= RANK[role];

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Called when a request other than signing in answers 401: the session ended (expired, signed out elsewhere). */
let onUnauthorized: (() => void) | null = null;
export const setUnauthorizedHandler = (f: (() => void) | null) => {
  onUnauthorized = f;
};

type Query = Record<string, string | number | undefined | null>;

function urlOf(path: string, query?: Query): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

export async function api<T>(method: 'GET' | 'POST' | 'DELETE', path: string, opts: { query?: Query; body?: unknown; signIn?: boolean } = {}): Promise<T> {
  const headers: Record<string, string> = { 'x-fleet-console': '1', accept: 'application/json' };
  const init: RequestInit = { method, credentials: 'same-origin', headers, cache: 'no-store' };
  if (opts.body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(opts.body);
  }
  let res: Response;
  try {
    res = await fetch(urlOf(path, opts.query), init);
  } catch {
    throw new ApiError(0, 'network', 'The API could not be reached. Check the connection and try again.');
  }
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // A proxy's HTML error page, say: reported below by status.
  }
  if (!res.ok) {
    const err = (json as { error?: { code?: string; message?: string } } | null)?.error;
    if (res.status === 401 && !opts.signIn) onUnauthorized?.();
    throw new ApiError(res.status, err?.code ?? 'http_error', err?.message ?? `${res.status} ${res.statusText}`);
  }
  return json as T;
}

export const get = <T>(path: string, query?: Query) => api<T>('GET', path, { query });
export const post = <T>(path: string, body: unknown = {}) => api<T>('POST', path, { body });
export const del = <T>(path: string, body?: unknown) => api<T>('DELETE', path, { body });

/** A path segment from an id the user typed or the API gave. */
export const seg = (id: string) => encodeURIComponent(id);

export const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));
