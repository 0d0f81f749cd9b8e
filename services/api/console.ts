import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';
import { errorBody } from './errors.js';
import { BOARD_PATH } from './session.js';

export const CONSOLE_PATH = '/console';

/**
 * The pages' own policy: scripts, styles, images and calls from this origin only (no CDN, works
 * offline). Inline styles are allowed because Bull Board's page and its charts set them; inline
 * scripts are not.
 */
const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/** Whether a matched route is one of the browser pages (the console, Bull Board) rather than the JSON API. */
const isPageRoute = (route: string | undefined) => route !== undefined && [CONSOLE_PATH, BOARD_PATH].some((p) => route === p || route.startsWith(`${p}/`));

/** The browser pages get a content policy of their own in place of the API's `default-src 'none'` (decided on the route, as authentication is). */
export function pagePolicy(route: string | undefined): string | null {
  return isPageRoute(route) ? PAGE_CSP : null;
}

/** Serves the console's built files (`npm run build` writes them to `dir`) at /console/. */
export const consolePages = (dir: string): FastifyPluginAsync => async (scope) => {
  const root = resolve(dir);
  scope.get(CONSOLE_PATH, { schema: { hide: true } }, async (_req, reply) => reply.redirect(`${CONSOLE_PATH}/`, 301));
  if (!existsSync(join(root, 'index.html'))) {
    scope.log.warn({ dir: root }, 'the console is not built (npm run build); /console answers 503');
    scope.get(`${CONSOLE_PATH}/*`, { schema: { hide: true } }, async (_req, reply) => reply.status(503).send(errorBody('console_not_built', 'the console is not built: run npm run build')));
    return;
  }
  await scope.register(fastifyStatic, { root, prefix: `${CONSOLE_PATH}/`, decorateReply: false, index: ['index.html'], cacheControl: true, maxAge: '5m' });
};
