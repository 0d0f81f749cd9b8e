import { z } from 'zod';
import { isoDate, symbol } from './fields.js';

/** A price move as a fraction: "-0.25" is a fall of 25 %. At least −1 (a price cannot go below zero). */
export const shock = z
  .string()
  .regex(/^-?\d{1,3}(\.\d{1,6})?$/, 'must be a fraction such as "-0.25"')
  .refine((s) => Number(s) >= -1, 'a price cannot fall more than 100 %');

/**
 * How a stress test moves prices: per-symbol shocks; one market shock that reaches each symbol
 * through its beta to the benchmark; or a historical window replayed, each symbol moving as its
 * loaded closes did from the window's first day to its last.
 */
export const stressScenario = z.union([
  z.strictObject({ shocks: z.record(symbol, shock).refine((r) => Object.keys(r).length >= 1 && Object.keys(r).length <= 500, 'give 1 to 500 symbols') }),
  z.strictObject({ market: shock }),
  z.strictObject({ window: z.strictObject({ from: isoDate, to: isoDate }).refine((w) => w.from < w.to, 'the window ends after it starts') }),
]);
export type StressScenario = z.infer<typeof stressScenario>;

/** The configured scenario of that name; an inherited property (`constructor`, `toString`) is none. */
export const scenarioNamed = (scenarios: Record<string, StressScenario>, name: string): StressScenario | undefined => (Object.hasOwn(scenarios, name) ? scenarios[name] : undefined);
