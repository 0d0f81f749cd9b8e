import { useEffect, useRef, useState } from 'preact/hooks';
import { messageOf } from './api';

export interface Loaded<T> {
  data: T | null;
  error: string | null;
  /** Loads again now (after an action), and goes on polling from there. */
  reload: () => Promise<void>;
}

/**
 * Loads `load()` when `deps` change and then every `everyMs` (null: once) while the page is shown.
 * The next poll is scheduled after the previous one answered, so a slow API never sees them pile up;
 * a hidden tab skips its polls. A failed poll keeps the last data and reports the error.
 */
export function usePoll<T>(load: () => Promise<T>, deps: unknown[], everyMs: number | null = null): Loaded<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const runNow = useRef<() => Promise<void>>(async () => {});

  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let last = '';
    setData(null);
    setError(null);
    const tick = async (force: boolean) => {
      clearTimeout(timer);
      if (force || !document.hidden) {
        try {
          const d = await load();
          if (stopped) return;
          // An unchanged answer keeps the old object: nothing re-renders, nothing redraws.
          const json = JSON.stringify(d) ?? '';
          if (json !== last) setData(d);
          last = json;
          setError(null);
        } catch (err) {
          if (stopped) return;
          setError(messageOf(err));
        }
      }
      if (!stopped && everyMs !== null) timer = setTimeout(() => void tick(false), everyMs);
    };
    runNow.current = () => tick(true);
    void tick(true);
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
    // The caller names what the load depends on, as with useEffect.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);

  return { data, error, reload: () => runNow.current() };
}

export type Route =
  | { page: 'reviews' | 'sagas' | 'alerts' | 'accounts' | 'dead-letters' }
  | { page: 'account'; id: string }
  | { page: 'unknown'; path: string };

export function parseHash(hash: string): Route {
  const path = hash.replace(/^#/, '') || '/reviews';
  const account = /^\/accounts\/([^/]+)$/.exec(path);
  if (account) {
    try {
      return { page: 'account', id: decodeURIComponent(account[1]!) };
    } catch {
      return { page: 'unknown', path };
    }
  }
  const simple = ['reviews', 'sagas', 'alerts', 'accounts', 'dead-letters'] as const;
  const found = simple.find((p) => path === `/${p}`);
  return found ? { page: found } : { page: 'unknown', path };
}

/** The route from `location.hash`, following its changes (links and history alike). */
export function useHashRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseHash(location.hash));
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

export const accountHref = (id: string) => `#/accounts/${encodeURIComponent(id)}`;
