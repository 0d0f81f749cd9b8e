import type { RedisClient } from '../queue/connection.js';

/**
 * The fleet's one source of time (SPEC §10). Live mode reads the wall clock; simulation mode reads
 * the simulated instant the simulator keeps in Redis, so every process of the fleet shares it.
 * Business dates are YYYY-MM-DD in UTC.
 */
export interface Clock {
  now(): Date;
  today(): string;
}

export const systemClock: Clock = {
  now: () => new Date(),
  today: () => new Date().toISOString().slice(0, 10),
};

/** The Redis key of a fleet's simulated time: one per queue prefix, like the fleet's queues. */
export const simulatedTimeKey = (queuePrefix: string) => `${queuePrefix}:clock:now`;

/** How often a process re-reads the simulated time; the simulator waits longer than this after a change. */
export const SIMULATION_POLL_MS = 25;

/** Sets the simulated instant for every process of the fleet (the simulator's side). */
export async function setSimulatedTime(redis: RedisClient, queuePrefix: string, at: Date): Promise<void> {
  await redis.set(simulatedTimeKey(queuePrefix), at.toISOString());
}

/**
 * Simulation mode: the instant kept in Redis, re-read every SIMULATION_POLL_MS and on `refresh()`.
 * `now()` stays synchronous (rules read it in the middle of their arithmetic); a process sees a new
 * simulated day within one poll, and the simulator waits that long before it enqueues the day's work.
 */
export class SimulationClock implements Clock {
  private current: Date;
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly redis: RedisClient,
    private readonly key: string,
    first: Date,
  ) {
    this.current = first;
  }

  static async open(redis: RedisClient, queuePrefix: string): Promise<SimulationClock> {
    const key = simulatedTimeKey(queuePrefix);
    const value = await redis.get(key);
    if (!value) throw new Error(`simulation clock: ${key} is not set; the simulator sets it before starting the fleet`);
    const clock = new SimulationClock(redis, key, new Date(value));
    clock.timer = setInterval(() => void clock.refresh().catch(() => undefined), SIMULATION_POLL_MS);
    clock.timer.unref();
    return clock;
  }

  async refresh(): Promise<void> {
    const value = await this.redis.get(this.key);
    if (value) this.current = new Date(value);
  }

  now(): Date {
    return new Date(this.current);
  }

  today(): string {
    return this.current.toISOString().slice(0, 10);
  }

  close(): void {
    clearInterval(this.timer);
  }
}
