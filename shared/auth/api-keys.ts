import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/**
 * scrypt with N = 2^14, r = 8, p = 1 (about 50 ms and 16 MiB): slow enough to make a leaked hash
 * table expensive to attack, run once per key and then cached by the API.
 */
const SCRYPT = { N: 16_384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;
const HASH_BYTES = 32;
const KEY_RE = /^fk_([a-f0-9]{16})_([A-Za-z0-9_-]{43})$/;

function scryptHex(secret: string, salt: string): Promise<string> {
  return new Promise((resolve, reject) =>
    scrypt(secret, salt, HASH_BYTES, SCRYPT, (err, key) => (err ? reject(err) : resolve(key.toString('hex')))),
  );
}

/**
 * A new key, or a new secret for an existing key id (a rotation): the id is stored in clear for
 * lookup, the secret only as a salted scrypt hash.
 */
export async function newApiKey(keyId = randomBytes(8).toString('hex')): Promise<{ key: string; keyId: string; hash: string; salt: string }> {
  const secret = randomBytes(32).toString('base64url');
  const salt = randomBytes(16).toString('hex');
  return { key: `fk_${keyId}_${secret}`, keyId, hash: await scryptHex(secret, salt), salt };
}

export function parseApiKey(key: string): { keyId: string; secret: string } | null {
  const m = KEY_RE.exec(key);
  return m ? { keyId: m[1]!, secret: m[2]! } : null;
}

/** Constant-time comparison of the derived hash, so timing says nothing about how close a guess was. */
export async function secretMatches(secret: string, salt: string, expectedHex: string): Promise<boolean> {
  const actual = Buffer.from(await scryptHex(secret, salt), 'hex');
  const expected = Buffer.from(expectedHex, 'hex');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
