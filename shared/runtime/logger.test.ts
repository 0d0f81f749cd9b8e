import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { createLogger, redactUrl } from './logger.js';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  return { lines, stream };
}

describe('logger', () => {
  it('never writes secrets, at the top level or one level down', () => {
    const { lines, stream } = capture();
    const logger = createLogger({ service: 'test', level: 'info' }, stream);
    logger.info(
      {
        apiKey: 'key-top-secret-1',
        config: { adminApiKey: 'admin-top-secret-2', mongodbUrl: 'mongodb://u:pw-secret-3@h/db' },
        req: { headers: { authorization: 'Bearer token-secret-4' } },
        password: 'pw-secret-5',
      },
      'started',
    );
    const text = lines.join('\n');
    for (const secret of ['key-top-secret-1', 'admin-top-secret-2', 'pw-secret-3', 'token-secret-4', 'pw-secret-5']) {
      expect(text).not.toContain(secret);
    }
    expect(JSON.parse(lines[0]!)).toMatchObject({ service: 'test', level: 'info', msg: 'started', apiKey: '[REDACTED]' });
  });

  it('strips credentials from connection URLs', () => {
    expect(redactUrl('mongodb://user:secret@db:27017/fleet')).toBe('mongodb://REDACTED:REDACTED@db:27017/fleet');
    expect(redactUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
    expect(redactUrl('not a url')).toBe('[unparseable url]');
  });
});
