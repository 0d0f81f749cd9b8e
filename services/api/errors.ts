import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';

/** SPEC §8: every error is `{ error: { code, message, details } }` with the status that fits it. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown = null,
    /** Response headers the answer needs (Retry-After on a 429). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
  /** Fastify and its plugins read `statusCode`. */
  get statusCode(): number {
    return this.status;
  }
}

export function errorBody(code: string, message: string, details: unknown = null) {
  return { error: { code, message, details } };
}

export function handleError(err: FastifyError, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (err instanceof ApiError) return reply.status(err.status).headers(err.headers).send(errorBody(err.code, err.message, err.details));
  if (hasZodFastifySchemaValidationErrors(err)) {
    const details = err.validation.map((v) => ({ path: v.instancePath, message: v.message }));
    return reply.status(400).send(errorBody('validation_failed', `invalid ${err.validationContext ?? 'request'}`, details));
  }
  const status = err.statusCode ?? 500;
  if (status >= 500) {
    req.log.error({ err }, 'request failed');
    return reply.status(500).send(errorBody('internal', 'internal error'));
  }
  // Fastify's own 4xx (malformed JSON, body too large, unsupported media type).
  return reply.status(status).send(errorBody(err.code?.toLowerCase() ?? 'bad_request', err.message));
}
