import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { type Principal, atLeast, messageOf, setUnauthorizedHandler } from './api';
import { type Route, parseHash, useHashRoute } from './hooks';
import { SignIn, Who, loadSession, safeNext, signOut } from './session';
import { AccountPage } from './pages/Account';
import { AccountsPage } from './pages/Accounts';
import { AlertsPage } from './pages/Alerts';
import { DeadLettersPage } from './pages/DeadLetters';
import { ReviewsPage } from './pages/Reviews';
import { SagasPage } from './pages/Sagas';
import './styles.css';

const LINKS = [
  { page: 'reviews', href: '#/reviews', label: 'Reviews' },
  { page: 'sagas', href: '#/sagas', label: 'Sagas' },
  { page: 'alerts', href: '#/alerts', label: 'Alerts' },
  { page: 'accounts', href: '#/accounts', label: 'Accounts' },
] as const;

function Page({ route, principal }: { route: Route; principal: Principal }) {
  switch (route.page) {
    case 'reviews':
      return <ReviewsPage principal={principal} />;
    case 'sagas':
      return <SagasPage principal={principal} />;
    case 'alerts':
      return <AlertsPage principal={principal} />;
    case 'accounts':
      return <AccountsPage />;
    case 'account':
      return <AccountPage id={route.id} />;
    case 'dead-letters':
      if (atLeast(principal, 'admin')) return <DeadLettersPage />;
      return <NotFound text="Dead letters are for admins." />;
    default:
      return <NotFound text={`No page at ${route.path}.`} />;
  }
}

function NotFound({ text }: { text: string }) {
  return (
    <>
      <h1 tabIndex={-1}>Not found</h1>
      <p>{text}</p>
      <p>
        <a href="#/reviews">Go to the reviews</a>
      </p>
    </>
  );
}

function Shell({ principal, onSignOut }: { principal: Principal; onSignOut: () => void }) {
  const route = useHashRoute();
  const main = useRef<HTMLElement>(null);
  const first = useRef(true);
  const routeKey = route.page === 'account' ? `account:${route.id}` : route.page;

  // A new page moves focus to its heading, so keyboard and screen-reader users start there.
  useEffect(() => {
    const h1 = main.current?.querySelector('h1');
    if (h1) {
      document.title = `${h1.textContent ?? ''} — Fleet console`;
      if (!first.current) h1.focus();
    }
    first.current = false;
  }, [routeKey]);

  const current = route.page === 'account' ? 'accounts' : route.page;
  const skip = (e: Event) => {
    e.preventDefault(); // the hash is the route: focus the content instead of following '#main'
    main.current?.focus();
  };
  return (
    <>
      <a class="skip" href="#main" onClick={skip}>
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Fleet console</span>
        <nav aria-label="Console">
          <ul>
            {LINKS.map((l) => (
              <li key={l.page}>
                <a href={l.href} aria-current={current === l.page ? 'page' : undefined}>
                  {l.label}
                </a>
              </li>
            ))}
            {atLeast(principal, 'admin') && (
              <>
                <li>
                  <a href="#/dead-letters" aria-current={current === 'dead-letters' ? 'page' : undefined}>
                    Dead letters
                  </a>
                </li>
                <li>
                  {/* Bull Board is a page of its own on the server: a full page load, not a console route. */}
                  <a href="/admin/queues">Queues</a>
                </li>
              </>
            )}
          </ul>
        </nav>
        <Who principal={principal} onSignOut={onSignOut} />
      </header>
      <main id="main" ref={main} tabIndex={-1}>
        <Page key={routeKey} route={route} principal={principal} />
      </main>
    </>
  );
}

function App() {
  // undefined: not known yet (the session is being asked for).
  const [principal, setPrincipal] = useState<Principal | null | undefined>(undefined);
  const [notice, setNotice] = useState<string | null>(null);
  const [leaving, setLeaving] = useState(false);

  useEffect(() => {
    setUnauthorizedHandler(() => {
      setPrincipal(null);
      setNotice('The session ended. Sign in again.');
    });
    loadSession().then(
      (p) => {
        // Already signed in: `next` is only followed right after signing in, so it is dropped.
        if (p) dropNext();
        setPrincipal(p);
      },
      (err) => {
        setPrincipal(null);
        setNotice(messageOf(err));
      },
    );
    return () => setUnauthorizedHandler(null);
  }, []);

  const signedIn = (p: Principal) => {
    const next = safeNext(new URLSearchParams(location.search).get('next'), p);
    if (next) {
      setLeaving(true);
      location.assign(next);
      return;
    }
    dropNext();
    // After signing in the console opens on the reviews, unless the address already named a page.
    if (parseHash(location.hash).page === 'unknown' || !location.hash) history.replaceState(null, '', `${location.pathname}#/reviews`);
    setNotice(null);
    setPrincipal(p);
  };

  const out = async () => {
    try {
      await signOut();
      setNotice(null);
    } catch (err) {
      setNotice(`Signing out failed: ${messageOf(err)}`);
    }
    setPrincipal(null);
  };

  if (principal === undefined || leaving) return <p class="loading">Loading…</p>;
  if (principal === null) return <SignIn onSignedIn={signedIn} notice={notice} />;
  return <Shell principal={principal} onSignOut={out} />;
}

/** Removes `?next=` from the address (without a reload), keeping the route in the hash. */
function dropNext() {
  const q = new URLSearchParams(location.search);
  if (!q.has('next')) return;
  q.delete('next');
  const s = q.toString();
  history.replaceState(null, '', `${location.pathname}${s ? `?${s}` : ''}${location.hash}`);
}

render(<App />, document.getElementById('app')!);
