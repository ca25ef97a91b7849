/**
 * Exponential backoff with jitter, for reconnecting: the pause doubles after every failed attempt
 * up to a cap, and each pause is shortened by a random fraction so that many agents cut off at
 * the same moment (a relay restart) do not all come back in the same instant.
 *
 * @example
 * ```ts
 * const backoff = new Backoff(500, 10_000);
 * const pauseMs = backoff.next(); // ~0.4-0.5 s, then ~0.8-1 s, ~1.6-2 s ... never above 10 s
 * await new Promise((resolve) => setTimeout(resolve, pauseMs));
 * backoff.reset(); // after a success
 * ```
 */

/** Largest fraction by which a pause is shortened at random. */
export const BACKOFF_JITTER = 0.2;

/** Pauses between attempts: `minMs`, doubling up to `maxMs`, each with jitter. */
export class Backoff {
  #minMs: number;
  #maxMs: number;
  #stepMs: number;
  #attempt = 0;

  constructor(minMs: number, maxMs: number) {
    this.#minMs = Math.min(minMs, maxMs);
    this.#maxMs = maxMs;
    this.#stepMs = this.#minMs;
  }

  /** Attempts counted since the last {@link reset} (1 after the first call to {@link next}). */
  get attempt(): number {
    return this.#attempt;
  }

  /** The pause before the next attempt, in ms: never above the cap, never below 80% of a step. */
  next(): number {
    this.#attempt++;
    const pause = this.#stepMs * (1 - BACKOFF_JITTER * Math.random());
    this.#stepMs = Math.min(this.#stepMs * 2, this.#maxMs);
    return Math.round(pause);
  }

  /** Starts again from the shortest pause (after a connection that worked). */
  reset(): void {
    this.#stepMs = this.#minMs;
    this.#attempt = 0;
  }
}

/**
 * Waits `ms`, or less if `signal` aborts; resolves true if it waited the whole time.
 *
 * @example
 * ```ts
 * const stopping = new AbortController();
 * if (await pause(500, stopping.signal)) console.log("try again");
 * ```
 */
export function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const timer = setTimeout(() => finish(true), ms);
    const finish = (waited: boolean) => {
      clearTimeout(timer);
      signal.removeEventListener("abort", aborted);
      resolve(waited);
    };
    const aborted = () => finish(false);
    signal.addEventListener("abort", aborted, { once: true });
  });
}
