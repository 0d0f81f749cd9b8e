import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, type Principal, api, del, messageOf } from './api';
import { ErrorText } from './components/Values';

/** Who the session cookie signs in, or null when there is no session. */
export async function loadSession(): Promise<Principal | null> {
  try {
    return await api<Principal>('GET', '/api/v1/session', { signIn: true });
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return null;
    throw err;
  }
}

export const signOut = () => del<unknown>('/api/v1/session');

/**
 * Where `?next=` may send a principal after signing in: this origin's Bull Board (admins only: it
 * would refuse anyone else) or the console itself. Anything else is ignored, so the parameter
 * cannot turn sign-in into an open redirect.
 */
export function safeNext(next: string | null, p: Principal): string | null {
  if (!next || !next.startsWith('/') || next.startsWith('//')) return null;
  let url: URL;
  try {
    url = new URL(next, location.origin);
  } catch {
    return null;
  }
  if (url.origin !== location.origin) return null;
  const to = url.pathname + url.search + url.hash;
  if (/^\/admin\/queues(\/|$)/.test(url.pathname)) return p.role === 'admin' ? to : null;
  if (/^\/console(\/|$)/.test(url.pathname)) return to;
  return null;
}

/**
 * The sign-in form. The key is read from the field when the form is sent (and the field cleared once
 * it worked): it is kept in no state, storage or URL; the server answers with an HttpOnly cookie.
 */
export function SignIn({ onSignedIn, notice }: { onSignedIn: (p: Principal) => void; notice: string | null }) {
  const [error, setError] = useState<string | null>(notice);
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  // No autofocus: the field is the page's first Tab stop, and a screen reader starts at the heading.
  useEffect(() => {
    document.title = 'Sign in — Fleet console';
  }, []);

  const submit = async (e: Event) => {
    e.preventDefault();
    const field = input.current!;
    const key = field.value.trim();
    if (!key) {
      setError('Enter an API key.');
      field.focus();
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const p = await api<Principal>('POST', '/api/v1/session', { body: { key }, signIn: true });
      field.value = '';
      onSignedIn(p);
    } catch (err) {
      setError(messageOf(err));
      field.select();
    } finally {
      setBusy(false);
    }
  };

  return (
    <main id="main" class="signin">
      <h1>Sign in</h1>
      <p class="muted">Operator's console of the account fleet. Sign in with an API key; the console keeps only a session cookie.</p>
      <form onSubmit={submit} method="post" class="stack" noValidate>
        <label for="api-key">API key</label>
        <input id="api-key" type="password" autocomplete="off" autocapitalize="off" spellcheck={false} ref={input} required />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
      <ErrorText error={error} />
    </main>
  );
}

/** The principal's id and role, and the way out. */
export function Who({ principal, onSignOut }: { principal: Principal; onSignOut: () => void }) {
  return (
    <div class="who">
      <span>
        Signed in as <strong class="principal-id">{principal.id}</strong> <span class="badge">{principal.role}</span>
      </span>
      <button type="button" class="secondary" onClick={onSignOut}>
        Sign out
      </button>
    </div>
  );
}
