import { createHash, randomBytes } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { SecureSessionPluginOptions } from '@fastify/secure-session';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Config } from '../../config/schema.js';
import type { Logger } from '../../shared/runtime/logger.js';
import { type Authenticator, type Principal, bearerKey } from './auth.js';
import { principalOf } from './context.js';
import { errorResponse } from './schemas.js';

declare module '@fastify/secure-session' {
  interface SessionData {
    /** The API key the person signed in with: sealed in the cookie, never readable by the page. */
    key: string;
  }
}

export const SESSION_COOKIE = 'fleet_session';
export const SESSION_PATH = '/api/v1/session';
/**
 * A request from the console carries this header. The session cookie counts on /api routes only
 * with it: a page of another site cannot add a custom header without a CORS preflight, which the
 * API refuses, so a forged request has no session even where a browser ignores SameSite.
 */
export const CONSOLE_HEADER = 'x-fleet-console';
/** Pages a browser reaches with its session cookie and no header: Bull Board's page and its own calls. */
export const BOARD_PATH = '/admin/queues';

/**
 * The browser session of the console and Bull Board: the key entered once is sealed (XSalsa20-Poly1305,
 * @fastify/secure-session) into an HttpOnly, SameSite=Strict cookie and re-authenticated on every
 * request through the same Authenticator as a Bearer header, so a revoked, rotated-out or expired key
 * ends its sessions at once and the failure throttles apply alike. The key never appears in a URL,
 * in page storage or in a log (the cookie header is redacted).
 */
export function sessionOptions(config: Pick<Config, 'apiSessionSecret' | 'api'>, tls: boolean, logger: Logger): SecureSessionPluginOptions {
  if (!config.apiSessionSecret) logger.warn('API_SESSION_SECRET is not set: browser sessions are sealed with a key of this process only (a restart signs everyone out)');
  return {
    key: config.apiSessionSecret ? createHash('sha256').update(config.apiSessionSecret).digest() : randomBytes(32),
    cookieName: SESSION_COOKIE,
    expiry: Math.floor(config.api.sessionTtlMs / 1000),
    // Secure whenever the request came over HTTPS: TLS here, or a proxy's X-Forwarded-Proto with api.trustProxy.
    cookie: { path: '/', httpOnly: true, sameSite: 'strict', secure: tls ? true : 'auto' },
  };
}

/** The key a request authenticates with: its Bearer header, else its session where the route accepts one. */
export function requestKey(req: FastifyRequest, route: string): string | undefined {
  const bearer = bearerKey(req);
  if (bearer) return bearer;
  const sessionAllowed = route === BOARD_PATH || route.startsWith(`${BOARD_PATH}/`) || req.headers[CONSOLE_HEADER] === '1';
  return sessionAllowed ? req.session?.get('key') : undefined;
}

const principalSchema = z.object({ id: z.string(), role: z.string(), ownerId: z.string().nullable() });
const view = (p: Principal) => ({ id: p.id, role: p.role, ownerId: p.ownerId });

/** Sign in (the key checked like any other request's, throttles included), who am I, sign out. */
export const sessionRoutes = (auth: Authenticator): FastifyPluginAsyncZod => async (r) => {
  const errors = { 400: errorResponse, 401: errorResponse, 429: errorResponse };
  r.post(SESSION_PATH, { schema: { body: z.strictObject({ key: z.string().min(1).max(200) }), response: { 200: principalSchema, ...errors } } }, async (req) => {
    const principal = await auth.authenticate(req, req.body.key);
    // A new cookie on every sign-in: a session fixed by someone else before it is never reused.
    req.session.regenerate();
    req.session.set('key', req.body.key);
    return view(principal);
  });
  r.get(SESSION_PATH, { schema: { response: { 200: principalSchema, ...errors } } }, async (req) => view(principalOf(req)));
  r.delete(SESSION_PATH, { schema: { response: { 204: z.null() } } }, async (req, reply) => {
    req.session.delete();
    return reply.status(204).send(null);
  });
};
