/**
 * Keeps repeated log lines from flooding the log: a message with a given key goes through at
 * most once per interval, and the next one that does says how many were held back meanwhile.
 */

/** Default interval between two lines with the same key. */
export const LOG_INTERVAL_MS = 60_000;
/** Keys remembered at most; beyond this the oldest are forgotten (so may log again early). */
export const MAX_THROTTLE_KEYS = 10_000;

/** A log throttle; one per kind of repeated event. */
export class LogThrottle {
  #intervalMs: number;
  #keys = new Map<string, { until: number; held: number }>();

  constructor(intervalMs = LOG_INTERVAL_MS) {
    this.#intervalMs = intervalMs;
  }

  /**
   * Calls `write` unless `key` was written within the interval; `write` gets a note such as
   * " (and 41 more since the last report)" to append when lines were held back.
   */
  pass(key: string, write: (note: string) => void): void {
    const now = performance.now();
    const seen = this.#keys.get(key);
    if (seen && now < seen.until) {
      seen.held++;
      return;
    }
    if (this.#keys.size >= MAX_THROTTLE_KEYS) this.#keys.delete(this.#keys.keys().next().value!);
    this.#keys.delete(key);
    this.#keys.set(key, { until: now + this.#intervalMs, held: 0 });
    write(seen?.held ? ` (and ${seen.held} more since the last report)` : "");
  }
}
