import Fastify from 'fastify';
import fastifySwagger from '@fastify/swagger';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Logger } from '../../shared/runtime/logger.js';
import { errorBody, handleError } from './errors.js';

/** Request bodies above this are refused before parsing (a money API takes small JSON). */
const BODY_BYTES_MAX = 64 * 1024;

/** The HTTP app: zod validates every body and query, and generates the OpenAPI document. */
export async function buildApp(deps: { logger: Logger }) {
  const app = Fastify({
    loggerInstance: deps.logger,
    bodyLimit: BODY_BYTES_MAX,
    return503OnClosing: true,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler(handleError);
  app.setNotFoundHandler((req, reply) => reply.status(404).send(errorBody('not_found', `no route ${req.method} ${req.url.split('?')[0]}`)));

  await app.register(fastifySwagger, {
    openapi: { info: { title: 'Account fleet API', version: '1' } },
    transform: jsonSchemaTransform,
  });
  app.get('/api/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}
