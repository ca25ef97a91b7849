/**
 * The open connections of a relay or an agent, and a graceful shutdown over them: once nothing
 * new is accepted, the connections still open get until a deadline to finish on their own, and
 * whatever is left then is closed.
 *
 * @example
 * ```ts
 * import { createLogger } from "./log.ts";
 * declare const conn: Deno.Conn;
 * const open = new OpenConnections();
 * open.track(conn); // ... open.release(conn) when it ends
 * // On SIGTERM, once the listeners are closed:
 * await drain(open, SHUTDOWN_TIMEOUT_MS, createLogger("relay"));
 * ```
 */

import type { Logger } from "./log.ts";
import { closeQuietly, type Conn } from "./net.ts";

/** Default time active connections get to finish after a shutdown signal. */
export const SHUTDOWN_TIMEOUT_MS = 10_000;

/** Waits for a count to reach zero, woken by whoever lowers it ({@link check}). */
export class WhenEmpty {
  readonly #waiters = new Set<() => void>();
  readonly #size: () => number;

  /** Waits on the count `size` gives. */
  constructor(size: () => number) {
    this.#size = size;
  }

  /** Wakes the waiters if the count is zero now; call it after lowering the count. */
  check(): void {
    if (this.#size() === 0) { for (const wake of this.#waiters) wake(); }
  }

  /** Resolves once the count is zero, or after `timeoutMs`; true if it is. */
  wait(timeoutMs: number): Promise<boolean> {
    if (this.#size() === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const finish = (empty: boolean) => {
        clearTimeout(timer);
        this.#waiters.delete(wake);
        resolve(empty);
      };
      const wake = () => finish(true);
      const timer = setTimeout(() => finish(false), timeoutMs);
      this.#waiters.add(wake);
    });
  }
}

/**
 * The open connections of a relay or an agent, each with what to do when it is released (such as
 * giving back a client's place under an access rule), and a way to learn when none is left.
 */
export class OpenConnections {
  #open = new Map<Conn, (() => void) | undefined>();
  #empty = new WhenEmpty(() => this.#open.size);

  /** How many connections are open. */
  get size(): number {
    return this.#open.size;
  }

  /** Counts `conn` as open until it is released; `onRelease` runs then. */
  track(conn: Conn, onRelease?: () => void): void {
    this.#open.set(conn, onRelease);
  }

  /** Counts `next` in place of `conn` (which wraps or replaces it), with `conn`'s `onRelease`. */
  replace(conn: Conn, next: Conn): void {
    if (!this.#open.has(conn)) return;
    const onRelease = this.#open.get(conn);
    this.#open.delete(conn);
    this.#open.set(next, onRelease);
  }

  /** Stops counting `conn` without closing it (it lives on elsewhere, or was closed). */
  forget(conn: Conn): void {
    this.#open.delete(conn);
    this.#empty.check();
  }

  /**
   * Stops counting `conn`, closes it (unless `close` is false: its new owner closes it), and runs
   * its `onRelease`; a second release only closes.
   */
  release(conn: Conn, close = true): void {
    const known = this.#open.has(conn);
    const onRelease = this.#open.get(conn);
    this.forget(conn);
    if (close) closeQuietly(conn);
    if (known) onRelease?.();
  }

  /** Releases every connection now; returns how many there were. */
  releaseAll(): number {
    const all = [...this.#open.keys()];
    all.forEach((conn) => this.release(conn));
    return all.length;
  }

  /** Resolves once none is open, or after `timeoutMs`; true if none is. */
  emptied(timeoutMs: number): Promise<boolean> {
    return this.#empty.wait(timeoutMs);
  }
}

/**
 * Lets the connections in `open` finish for up to `timeoutMs`, then releases the rest, saying on
 * `log` what it waits for and what it cut short. Call it after new connections have stopped.
 */
export async function drain(
  open: OpenConnections,
  timeoutMs: number,
  log: Logger,
): Promise<void> {
  if (open.size === 0) return;
  log.info(
    `waiting up to ${timeoutMs / 1000} s for ${open.size} open connection(s) to finish ` +
      "(signal again to stop at once)",
  );
  if (await open.emptied(timeoutMs)) {
    log.info("all connections finished");
  } else {
    log.warn(
      `closing ${open.releaseAll()} connection(s) still open after ${timeoutMs / 1000} s ` +
        "(raise --shutdown-timeout to give them longer)",
    );
  }
}
