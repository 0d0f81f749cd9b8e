import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './load.js';
import { SERVICE_NAMES } from './schema.js';
import { QUEUE_NAMES } from '../shared/contracts/queues.js';

describe('loadConfig', () => {
  it('loads the SPEC defaults', () => {
    const c = loadConfig({});
    expect(c.tiers.GEN).toMatchObject({ minCapital: '10000.00', forkThreshold: '100000.00', maxPositions: 10, monitoringFrequencySec: 300 });
    expect(c.tiers.REV).toMatchObject({ maxCapitalPerPosition: '0.15', riskMultiplier: '1.2', monitoringFrequencySec: 180 });
    expect(c.tiers.COM).toMatchObject({ forkThreshold: null, nextTier: null, monitoringFrequencySec: 60 });
    expect(c.queues.fork.globalConcurrency).toBe(5);
    expect(Object.keys(c.services).sort()).toEqual([...SERVICE_NAMES].sort());
    expect(Object.keys(c.queues).sort()).toEqual([...QUEUE_NAMES].sort());
  });

  it('applies named and path overrides from the environment, typed by the schema', () => {
    const c = loadConfig({
      API_PORT: '8181',
      REDIS_URL: 'redis://10.0.0.5:6380',
      FLEET__TIERS__GEN__FORK_THRESHOLD: '150000.00',
      FLEET__QUEUES__ACCOUNT_OPS__WORKER_CONCURRENCY: '4',
      FLEET__SERVICES__FORK_EXECUTOR__PORT: '9999',
      FLEET__ALERTS__WEBHOOK_URLS: '["https://hooks.example.com/a"]',
      FLEET__TIERS__COM__FORK_THRESHOLD: 'null',
    });
    expect(c.apiPort).toBe(8181);
    expect(c.redisUrl).toBe('redis://10.0.0.5:6380');
    expect(c.tiers.GEN.forkThreshold).toBe('150000.00');
    expect(c.queues['account-ops'].workerConcurrency).toBe(4);
    expect(c.services['fork-executor'].port).toBe(9999);
    expect(c.alerts.webhookUrls).toEqual(['https://hooks.example.com/a']);
  });

  it('reads a record of stress scenarios from JSON, and refuses a report scenario it does not hold', () => {
    const c = loadConfig({ FLEET__RISK__SCENARIOS: '{"rates-up":{"market":"-0.05"}}', FLEET__RISK__REPORT_SCENARIO: 'rates-up' });
    expect(c.risk.scenarios).toEqual({ 'rates-up': { market: '-0.05' } });
    expect(() => loadConfig({ FLEET__RISK__REPORT_SCENARIO: 'constructor' })).toThrow(/risk\.reportScenario: constructor is not among risk\.scenarios/);
  });

  it('names the key and the variable of a bad value', () => {
    expect(() => loadConfig({ FLEET__TIERS__GEN__MAX_POSITIONS: 'ten' })).toThrow(/tiers\.GEN\.maxPositions \(from FLEET__TIERS__GEN__MAX_POSITIONS\)/);
    expect(() => loadConfig({ API_PORT: '70000' })).toThrow(/apiPort \(from API_PORT\)/);
    expect(() => loadConfig({ FLEET__TIERS__GEN__MIN_CAPITAL: '1e4' })).toThrow(/tiers\.GEN\.minCapital.*plain decimal/);
    expect(() => loadConfig({ MONGODB_URL: 'http://x' })).toThrow(/mongodbUrl/);
  });

  it('refuses an unknown key instead of ignoring a typo', () => {
    expect(() => loadConfig({ FLEET__TIERS__GEN__FORK_TRESHOLD: '1' })).toThrow(/FLEET__TIERS__GEN__FORK_TRESHOLD: no config key "tiers.GEN.FORK_TRESHOLD"/);
  });

  it('checks rules that span keys', () => {
    expect(() => loadConfig({ FLEET__FORK__WEIGHT_MARKET: '0.50' })).toThrow(/four weights must add up to 1/);
    expect(() => loadConfig({ FLEET__QUEUES__FORK__GLOBAL_CONCURRENCY: '7' })).toThrow(/must equal fork.maxInFlight/);
    expect(() => loadConfig({ FLEET__SERVICES__ALERTER__PORT: '9101' })).toThrow(/services.alerter.port: 9101 is also used by services.api.port/);
    expect(() => loadConfig({ FLEET__TIERS__COM__NEXT_TIER: 'GEN' })).toThrow(/tiers.COM: forkThreshold and nextTier/);
  });

  it('throws a ConfigError listing every problem at once', () => {
    try {
      loadConfig({ API_PORT: 'x', LOG_LEVEL: 'loud' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(/apiPort/);
      expect((err as Error).message).toMatch(/logLevel/);
    }
  });
});
