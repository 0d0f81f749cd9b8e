import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parse } from 'yaml';
import { defaults } from '../config/defaults.js';
import { SERVICE_NAMES } from '../config/schema.js';
import { ROOT } from './helpers/processes.js';

// No Docker engine runs here, so the production wiring is checked as files against the code.
const read = (path: string) => parse(readFileSync(join(ROOT, path), 'utf8'), { merge: true }) as Record<string, any>;
const compose = read('docker-compose.yml');
const serviceDirs = readdirSync(join(ROOT, 'services'), { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

describe('docker-compose.yml', () => {
  it('lists every service folder, and the config knows the same services', () => {
    expect(serviceDirs).toEqual([...SERVICE_NAMES].sort());
    for (const name of serviceDirs) {
      const svc = compose.services[name];
      expect(svc, name).toBeDefined();
      expect(svc.command).toEqual(['node', '--enable-source-maps', `dist/services/${name}/main.js`]);
      expect(svc.build).toBe('.');
      expect(svc.environment.MONGODB_URL).toBe('mongodb://mongo:27017/fleet');
      expect(svc.environment.REDIS_URL).toBe('redis://redis:6379');
    }
  });

  it('exposes and health-checks each service on its configured metrics port', () => {
    for (const name of SERVICE_NAMES) {
      const port = String(defaults.services[name].port);
      const svc = compose.services[name];
      expect(svc.expose, name).toEqual([port]);
      expect(svc.healthcheck.test.join(' '), name).toContain(`http://127.0.0.1:${port}/readyz`);
    }
    expect(compose.services.api.environment.API_PORT).toBe(String(defaults.apiPort));
    expect(compose.services.api.ports).toEqual([`${defaults.apiPort}:${defaults.apiPort}`]);
  });

  it('runs FLEET_REPLICAS (default 2) of every worker service and one API, which publishes its port', () => {
    for (const name of SERVICE_NAMES) expect([name, compose.services[name].deploy.replicas]).toEqual([name, name === 'api' ? 1 : '${FLEET_REPLICAS:-2}']);
  });

  it('runs MongoDB 7 and Redis 7 with AOF and noeviction', () => {
    expect(compose.services.mongo.image).toBe('mongo:7');
    expect(compose.services.redis.image).toBe('redis:7');
    const redisArgs = compose.services.redis.command.join(' ');
    expect(redisArgs).toContain('--appendonly yes');
    expect(redisArgs).toContain('--maxmemory-policy noeviction');
  });

  it('has Prometheus scrape exactly the services on their configured ports, with its rule file', () => {
    const prom = read('config/prometheus/prometheus.yml');
    // Every replica: Docker's DNS name of each service, resolved to all its containers.
    const targets = prom.scrape_configs.flatMap((c: any) => c.dns_sd_configs.flatMap((s: any) => s.names.map((n: string) => `${n}:${s.port}`))).sort();
    expect(targets).toEqual(SERVICE_NAMES.map((n) => `${n}:${defaults.services[n].port}`).sort());
    expect(compose.services.prometheus.volumes).toContain('./config/prometheus:/etc/prometheus:ro');
    expect(prom.rule_files).toEqual(['/etc/prometheus/alerts.yml']);
    const rules = read('config/prometheus/alerts.yml');
    expect(rules.groups[0].rules.length).toBeGreaterThan(0);
  });

  it('provisions Grafana with the Prometheus datasource and a dashboard', () => {
    const ds = read('config/grafana/provisioning/datasources/prometheus.yml');
    expect(ds.datasources[0]).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090', uid: 'prometheus' });
    expect(compose.services.grafana.volumes).toContain('./config/grafana/provisioning:/etc/grafana/provisioning:ro');
    const dashboard = JSON.parse(readFileSync(join(ROOT, 'config/grafana/dashboards/fleet.json'), 'utf8'));
    for (const panel of dashboard.panels) expect(panel.datasource.uid).toBe('prometheus');
    expect(existsSync(join(ROOT, 'Dockerfile'))).toBe(true);
  });
});

describe('Prometheus alerting rules', () => {
  it('pass promtool check rules', () => {
    const promtool = process.env['PROMTOOL'];
    expect(promtool, 'PROMTOOL is set by the servers script that npm test runs').toBeTruthy();
    const r = spawnSync(promtool!, ['check', 'rules', join(ROOT, 'config/prometheus/alerts.yml')], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toMatch(/SUCCESS: \d+ rules found/);
    expect(r.status).toBe(0);
  });
});
