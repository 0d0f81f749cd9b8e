/**
 * The fleet's one source of time (SPEC §10). Live mode reads the wall clock; simulation mode (the
 * simulator) supplies a clock whose date it advances. Business dates are YYYY-MM-DD in UTC.
 */
export interface Clock {
  now(): Date;
  today(): string;
}

export const systemClock: Clock = {
  now: () => new Date(),
  today: () => new Date().toISOString().slice(0, 10),
};
