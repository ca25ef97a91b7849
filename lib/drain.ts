/**
 * The open connections of a relay or an agent, and a graceful shutdown over them: once nothing
 * new is accepted, the connections still open get until a deadline to finish on their own, and
 * whatever is left then is closed.
 *
 * @example
 * ```ts
 * import { createLogger } from "./log.ts";
 * declare const conn: Deno.Conn;
 * const open = new ConnectionSet();
 * open.add(conn); // ... open.delete(conn) when it ends
 * // On SIGTERM, once the listeners are closed:
 * await drain(open, () => open.closeAll(), SHUTDOWN_TIMEOUT_MS, createLogger("relay"));
 * ```
 */

import type { Logger } from "./log.ts";
import { closeQuietly, type Conn } from "./net.ts";

/** Default time active connections get to finish after a shutdown signal. */
export const SHUTDOWN_TIMEOUT_MS = 10_000;

/** A map from connections to what goes with each, that can tell when it becomes empty. */
export class ConnectionMap<V> extends Map<Conn, V> {
  #waiters = new Set<() => void>();

  override delete(conn: Conn): boolean {
    const removed = super.delete(conn);
    if (this.size === 0) { for (const wake of this.#waiters) wake(); }
    return removed;
  }

  override clear(): void {
    super.clear();
    for (const wake of this.#waiters) wake();
  }

  /** Resolves once the map is empty, or after `timeoutMs`; true if it emptied. */
  emptied(timeoutMs: number): Promise<boolean> {
    if (this.size === 0) return Promise.resolve(true);
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

/** A set of connections (nothing goes with them) that can tell when it becomes empty. */
export class ConnectionSet extends ConnectionMap<undefined> {
  /** Adds a connection. */
  add(conn: Conn): this {
    return this.set(conn, undefined);
  }

  /** Closes every connection now and forgets them; returns how many there were. */
  closeAll(): number {
    const count = this.size;
    for (const conn of this.keys()) closeQuietly(conn);
    this.clear();
    return count;
  }
}

/**
 * Lets the connections in `open` finish for up to `timeoutMs`, then calls `closeRest` (which
 * returns how many it closed), saying on `log` what it waits for and what it cut short. Call it
 * after new connections have stopped.
 */
export async function drain(
  open: ConnectionMap<unknown>,
  closeRest: () => number,
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
      `closing ${closeRest()} connection(s) still open after ${timeoutMs / 1000} s ` +
        "(raise --shutdown-timeout to give them longer)",
    );
  }
}
