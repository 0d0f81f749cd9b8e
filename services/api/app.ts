import Fastify, { type FastifyError, type FastifyReply, type FastifyRequest } from 'fastify';
import fastifySwagger from '@fastify/swagger';
import fastifyRateLimit from '@fastify/rate-limit';
import fastifyHelmet from '@fastify/helmet';
import fastifyCors from '@fastify/cors';
import type { RedisClient } from '../../shared/queue/connection.js';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Logger } from '../../shared/runtime/logger.js';
import type { SecurityEvents } from '../../shared/auth/security-events.js';
import { type Authenticator, bearerKey, requireRole } from './auth.js';
import fastifySecureSession from '@fastify/secure-session';
import { CONSOLE_PATH, consolePages, pagePolicy } from './console.js';
import { queueBoard } from './queue-board.js';
import { BOARD_PATH, SESSION_PATH, requestKey, sessionOptions, sessionRoutes } from './session.js';
import type { ApiDeps } from './context.js';
import { ApiError, errorBody, handleError } from './errors.js';
import { accountRoutes } from './routes/accounts.js';
import { adminRoutes } from './routes/admin.js';
import { transactionRoutes } from './routes/transactions.js';
import { forkingRoutes } from './routes/forking.js';
import { reviewRoutes } from './routes/reviews.js';
import { consolidationRoutes } from './routes/consolidation.js';
import { performanceRoutes } from './routes/performance.js';
import { forecastRoutes } from './routes/forecast.js';
import { sagaControlRoutes } from './routes/saga-control.js';
import { keyRoutes } from './routes/keys.js';
import { contractsDocument } from '../../shared/contracts/json-schema.js';
import { bullPrefix } from '../../shared/queue/connection.js';
import { auditRoutes } from './routes/audit.js';
import { bulkRoutes } from './routes/bulk.js';
import { deadLetterRoutes } from './routes/dead-letters.js';
import { statementRoutes } from './routes/statements.js';
import { riskRoutes } from './routes/risk.js';

/** Request bodies above this are refused before parsing (a money API takes small JSON). */
const BODY_BYTES_MAX = 256 * 1024;
const PUBLIC_PATHS = new Set(['/api/v1/openapi.json', '/api/v1/contracts']);
/** Signing in takes its key in the body, and signing out needs none. */
const SESSION_OPEN = new Set([`POST ${SESSION_PATH}`, `DELETE ${SESSION_PATH}`]);

export interface AppDeps {
  logger: Logger;
  api: ApiDeps;
  auth: Authenticator;
  security: SecurityEvents;
  rateLimitRedis: RedisClient | null;
  /** HTTPS with this certificate and key; null: plain HTTP (behind a TLS-terminating proxy, or local). */
  tls: { cert: Buffer; key: Buffer } | null;
}

/** The HTTP app: zod validates every body, query and path, and generates the OpenAPI document. */
export async function buildApp(deps: AppDeps) {
  const cfg = deps.api.config.api;
  const app = Fastify({
    loggerInstance: deps.logger,
    bodyLimit: BODY_BYTES_MAX,
    return503OnClosing: true,
    trustProxy: cfg.trustProxy,
    ...(deps.tls ? { https: deps.tls } : {}),
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  const onError = (err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    // A role refusal is a security event: someone tried what their key may not do.
    if (err instanceof ApiError && err.status === 403) {
      deps.security.record({ kind: 'role-refused', actor: req.principal?.id ?? 'anonymous', detail: { method: req.method, route: req.routeOptions.url ?? null, message: err.message, ip: req.ip } });
    }
    return handleError(err, req, reply);
  };
  app.setErrorHandler(onError);
  // Security headers for an API that answers JSON only (no page of its own to protect with a CSP).
  await app.register(fastifyHelmet, { contentSecurityPolicy: { directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } }, hsts: deps.tls ? { maxAge: 31_536_000 } : false });
  // Browsers may call the API only from the origins configured; every other origin gets no CORS headers.
  await app.register(fastifyCors, { origin: cfg.corsOrigins.length > 0 ? cfg.corsOrigins : false, methods: ['GET', 'POST', 'PUT', 'DELETE'], allowedHeaders: ['authorization', 'content-type'], maxAge: 600 });
  app.setNotFoundHandler((req, reply) => reply.status(404).send(errorBody('not_found', `no route ${req.method} ${req.url.split('?')[0]}`)));

  app.decorateRequest('principal', null);
  /** A session whose key no longer authenticates (revoked, expired) is dropped, so its page stops sending it. */
  const authenticateOrForget = async (req: FastifyRequest, key: string | undefined) => {
    try {
      return await deps.auth.authenticate(req, key);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401 && key !== undefined && key === req.session?.get('key')) req.session.delete();
      throw err;
    }
  };
  // Before the authentication hook, which reads the session it opens.
  await app.register(fastifySecureSession, sessionOptions(deps.api.config, deps.tls !== null, deps.logger));
  app.addHook('onSend', async (req, reply) => {
    const policy = pagePolicy(req.routeOptions.url);
    if (policy) reply.header('content-security-policy', policy);
  });
  // Decided on the route matched, not the raw URL: a percent-encoded path reaches the same route.
  // An unknown path asks for a key too, so which routes exist is not told to anonymous callers.
  app.addHook('onRequest', async (req, reply) => {
    const route = req.routeOptions.url;
    if (route === BOARD_PATH || route?.startsWith(`${BOARD_PATH}/`)) {
      const key = requestKey(req, route);
      // A browser opening the board without a session is sent to sign in first, then back.
      if (!key && req.method === 'GET' && req.headers.accept?.includes('text/html')) return reply.redirect(`${CONSOLE_PATH}/?next=${encodeURIComponent(BOARD_PATH)}`, 303);
      try {
        req.principal = await authenticateOrForget(req, key);
        requireRole(req.principal, 'admin');
      } catch (err) {
        // Bull Board's plugin sets an error handler of its own: its routes' refusals are answered,
        // counted and recorded here, as the API's are.
        return onError(err as FastifyError, req, reply);
      }
    } else if (route === undefined || (route.startsWith('/api/') && !PUBLIC_PATHS.has(route) && !SESSION_OPEN.has(`${req.method} ${route}`))) {
      req.principal = await authenticateOrForget(req, route === undefined ? bearerKey(req) : requestKey(req, route));
    }
  });
  // After authentication, so the limit is per key (shared by every API replica through Redis).
  await app.register(fastifyRateLimit, {
    global: true,
    hook: 'preHandler',
    max: deps.api.config.api.rateLimitMax,
    timeWindow: deps.api.config.api.rateLimitWindowMs,
    keyGenerator: (req) => req.principal?.id ?? req.ip,
    ...(deps.rateLimitRedis ? { redis: deps.rateLimitRedis, nameSpace: 'fleet-ratelimit:' } : {}),
    skipOnError: true,
    errorResponseBuilder: (_req, ctx) => new ApiError(429, 'rate_limited', `rate limit of ${ctx.max} requests per ${ctx.after} exceeded`),
  });

  await app.register(fastifySwagger, {
    openapi: {
      info: { title: 'Account fleet API', version: '1', description: 'Money as decimal strings; writes answer 202 with a status URL, or the outcome with ?wait=true.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  app.get('/api/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  // The job contracts, for producers that enqueue directly (public, as the OpenAPI document is).
  const contracts = contractsDocument(deps.api.config.queuePrefix, (q) => bullPrefix(deps.api.config, q));
  app.get('/api/v1/contracts', { schema: { hide: true } }, async () => contracts);
  await app.register(accountRoutes(deps.api));
  await app.register(transactionRoutes(deps.api));
  await app.register(adminRoutes(deps.api));
  await app.register(forkingRoutes(deps.api));
  await app.register(consolidationRoutes(deps.api));
  await app.register(reviewRoutes(deps.api));
  await app.register(performanceRoutes(deps.api));
  await app.register(forecastRoutes(deps.api));
  await app.register(sagaControlRoutes(deps.api));
  await app.register(keyRoutes(deps.api));
  await app.register(auditRoutes(deps.api));
  await app.register(bulkRoutes(deps.api));
  await app.register(deadLetterRoutes(deps.api));
  await app.register(statementRoutes(deps.api));
  await app.register(riskRoutes(deps.api));
  await app.register(sessionRoutes(deps.auth));
  await app.register(queueBoard(deps.api.producer, deps.api.config.api.queueBoardReadOnly));
  await app.register(consolePages(deps.api.config.api.consoleDir));
  return app;
}
