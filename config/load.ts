import type { z } from 'zod';
import { configSchema, type Config } from './schema.js';
import { defaults } from './defaults.js';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Environment variables with a conventional name; everything else is `FLEET__<PATH>`. */
const NAMED_ENV: Record<string, keyof Config> = {
  NODE_ENV: 'env',
  LOG_LEVEL: 'logLevel',
  MONGODB_URL: 'mongodbUrl',
  REDIS_URL: 'redisUrl',
  REDIS_CLUSTER_NODES: 'redisClusterNodes',
  FLEET_QUEUE_PREFIX: 'queuePrefix',
  ADMIN_API_KEY: 'adminApiKey',
  API_PORT: 'apiPort',
  API_TLS_CERT: 'apiTlsCert',
  API_TLS_KEY: 'apiTlsKey',
  API_SESSION_SECRET: 'apiSessionSecret',
};
const PATH_PREFIX = 'FLEET__';

const normalise = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, '');

type AnySchema = z.core.$ZodType;
const defOf = (s: AnySchema) => (s as unknown as { _zod: { def: { type: string; [k: string]: unknown } } })._zod.def;

/** Strips nullable/optional/default wrappers to reach the schema that describes the value. */
function unwrap(schema: AnySchema): AnySchema {
  let s = schema;
  for (let i = 0; i < 10; i++) {
    const def = defOf(s);
    if (def.type === 'nullable' || def.type === 'optional' || def.type === 'default') s = def['innerType'] as AnySchema;
    else break;
  }
  return s;
}

/** Text from the environment → the type the schema expects at that key (validated afterwards). */
function parseEnvValue(schema: AnySchema, text: string): unknown {
  if (text === 'null' && defOf(schema).type === 'nullable') return null;
  switch (defOf(unwrap(schema)).type) {
    case 'number':
      return text.trim() === '' ? Number.NaN : Number(text);
    case 'boolean':
      return text === 'true' ? true : text === 'false' ? false : text;
    case 'array':
    case 'object':
    case 'record':
      try {
        return JSON.parse(text) as unknown;
      } catch {
        return text;
      }
    default:
      return text;
  }
}

/** Resolves `FLEET__TIERS__GEN__FORK_THRESHOLD` to ['tiers', 'GEN', 'forkThreshold'] along the schema. */
function resolvePath(envName: string): { path: string[]; leaf: AnySchema } {
  const segments = envName.slice(PATH_PREFIX.length).split('__');
  const path: string[] = [];
  let schema: AnySchema = configSchema;
  for (const segment of segments) {
    const def = defOf(unwrap(schema));
    const shape = def.type === 'object' ? (def['shape'] as Record<string, AnySchema>) : undefined;
    const key = shape && Object.keys(shape).find((k) => normalise(k) === normalise(segment));
    if (!shape || !key) {
      throw new ConfigError(`${envName}: no config key "${[...path, segment].join('.')}"`);
    }
    path.push(key);
    schema = shape[key]!;
  }
  return { path, leaf: schema };
}

function setAt(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string, unknown>;
  node[path[path.length - 1]!] = value;
}

/**
 * Defaults, overridden by the environment, validated once. Any problem throws a ConfigError
 * naming each bad key and the variable it came from, so the process can stop with that message.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const raw = structuredClone(defaults) as unknown as Record<string, unknown>;
  const origin = new Map<string, string>();
  const problems: string[] = [];

  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    try {
      const named = NAMED_ENV[name];
      const { path, leaf } = named
        ? { path: [named as string], leaf: configSchema.shape[named] as AnySchema }
        : name.startsWith(PATH_PREFIX)
          ? resolvePath(name)
          : { path: [], leaf: configSchema };
      if (path.length === 0) continue;
      setAt(raw, path, parseEnvValue(leaf, value));
      origin.set(path.join('.'), name);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }

  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const key = issue.path.join('.');
      const from = origin.get(key);
      problems.push(`${key}${from ? ` (from ${from})` : ''}: ${issue.message}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  return checkConsistency(parsed.data!);
}

/** Rules that span keys, which a per-key schema cannot see. */
function checkConsistency(config: Config): Config {
  const problems: string[] = [];
  const weights = ['weightMarket', 'weightPerformance', 'weightSystemLoad', 'weightTiming'] as const;
  const forkWeightSum = weights.reduce((sum, k) => sum + Math.round(Number(config.fork[k]) * 1e6), 0);
  if (forkWeightSum !== 1e6) problems.push(`fork.weight*: the four weights must add up to 1`);
  const c = config.consolidation;
  const consWeightSum = [c.weightTriggerReliability, c.weightBenefit, c.weightRisk].reduce(
    (sum, w) => sum + Math.round(Number(w) * 1e6),
    0,
  );
  if (consWeightSum !== 1e6) problems.push(`consolidation.weight*: the three weights must add up to 1`);
  if (!Object.hasOwn(config.risk.scenarios, config.risk.reportScenario)) problems.push(`risk.reportScenario: ${config.risk.reportScenario} is not among risk.scenarios (${Object.keys(config.risk.scenarios).join(', ')})`);
  if (Number(config.fork.approveConfidence) > Number(config.fork.executeNowConfidence)) {
    problems.push('fork.approveConfidence: must not exceed fork.executeNowConfidence');
  }
  if (config.queues.fork.globalConcurrency !== config.fork.maxInFlight) {
    problems.push('queues.fork.globalConcurrency: must equal fork.maxInFlight (the fleet-wide fork limit)');
  }
  for (const [name, tier] of Object.entries(config.tiers)) {
    if ((tier.forkThreshold === null) !== (tier.nextTier === null)) {
      problems.push(`tiers.${name}: forkThreshold and nextTier must both be set or both be null`);
    }
  }
  const ports = new Map<number, string>();
  for (const [name, { port }] of Object.entries(config.services)) {
    const clash = ports.get(port) ?? (port === config.apiPort ? 'apiPort' : undefined);
    if (clash) problems.push(`services.${name}.port: ${port} is also used by ${clash}`);
    ports.set(port, `services.${name}.port`);
  }
  if (problems.length > 0) throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  return config;
}
