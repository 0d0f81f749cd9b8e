import { Registry, collectDefaultMetrics } from 'prom-client';

/** One registry per process with Node's default metrics, every series labelled with its service. */
export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return registry;
}
