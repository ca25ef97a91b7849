/**
 * A deadline that follows activity: it fires once nothing has happened for a while. Used for
 * heartbeat silence and idle connections.
 *
 * @example
 * ```ts
 * declare const conn: Deno.Conn;
 * let last = performance.now(); // set on every byte
 * const stop = whenQuiet(() => last, 30_000, () => conn.close());
 * last = performance.now(); // a byte moved: the deadline moves with it
 * stop(); // the connection ended first
 * ```
 */

/**
 * Calls `onQuiet(quietMs)` once `lastActivity()` (a `performance.now()` time) is `limitMs` in the
 * past. One timer, re-armed only when it fires, so recording activity costs only a timestamp.
 * Returns a function that cancels it.
 */
export function whenQuiet(
  lastActivity: () => number,
  limitMs: number,
  onQuiet: (quietMs: number) => void,
): () => void {
  const check = () => {
    const quietMs = performance.now() - lastActivity();
    if (quietMs < limitMs) timer = setTimeout(check, limitMs - quietMs);
    else onQuiet(quietMs);
  };
  let timer = setTimeout(check, limitMs);
  return () => clearTimeout(timer);
}
