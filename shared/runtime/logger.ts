import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/**
 * Paths whose values never reach a log line. Fixed here, never taken from input (pino's own
 * advice: user input must not choose redaction paths).
 */
export const REDACT_PATHS = [
  'authorization',
  'apiKey',
  'adminApiKey',
  'apiSessionSecret',
  'password',
  'secret',
  'token',
  'mongodbUrl',
  'redisUrl',
  '*.authorization',
  '*.apiKey',
  '*.adminApiKey',
  '*.apiSessionSecret',
  '*.password',
  '*.secret',
  '*.token',
  '*.mongodbUrl',
  '*.redisUrl',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.body.key',
  'body.key',
  'headers.authorization',
  'headers.cookie',
  'res.headers["set-cookie"]',
];

/** Strips user and password from a connection URL so it can be logged. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username || u.password) {
      u.username = u.username ? 'REDACTED' : '';
      u.password = u.password ? 'REDACTED' : '';
    }
    return u.toString();
  } catch {
    return '[unparseable url]';
  }
}

export function createLogger(
  opts: { service: string; level: string },
  destination?: DestinationStream,
): Logger {
  return pino(
    {
      level: opts.level,
      base: { service: opts.service, pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/** Writes out anything buffered; the last step of shutdown so no log line is lost. */
export function flushLogger(logger: Logger): Promise<void> {
  return new Promise((resolve) => logger.flush(() => resolve()));
}
