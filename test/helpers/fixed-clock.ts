import type { Clock } from '../../shared/runtime/clock.js';

/** A clock that stands still (and can be moved), so time-dependent rules are tested deterministically. */
export class FixedClock implements Clock {
  constructor(private at: Date) {}
  now(): Date {
    return new Date(this.at);
  }
  today(): string {
    return this.at.toISOString().slice(0, 10);
  }
  advanceHours(h: number): void {
    this.at = new Date(this.at.getTime() + h * 3600_000);
  }
}
