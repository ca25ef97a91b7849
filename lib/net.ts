/**
 * Sockets: the connection type every layer speaks, dialling with the socket options every
 * porthole connection uses, deadlines, whole reads and writes, and short reasons for socket
 * errors. Listening and accepting are in lib/listen.ts, addresses in lib/address.ts.
 */

import type { HostPort } from "./address.ts";
import { tlsProblem } from "./tls_errors.ts";

/**
 * A connection as every part of porthole sees it, whatever carries it (TCP, TLS, and the
 * transports and fronts to come). Deno's TCP and TLS connections are such, and so are the relay's
 * TLS connections from `lib/transport/node_tls.ts`. The contract every implementation keeps:
 *
 * - `read(buffer)` resolves with the number of bytes put at the start of `buffer` (at least 1), or
 *   null once the peer has ended its sending direction; after null, reads keep returning null.
 *   It rejects once the connection fails or is closed locally.
 * - `write(data)` resolves with how many bytes of `data` it took (use {@link writeAll}); once it
 *   resolves, `data` may be reused.
 * - `closeWrite()` ends this side's sending direction only (half-close: TCP FIN, after TLS
 *   close_notify), while reading goes on: the peer's `read` then returns null. Many protocols
 *   send, half-close, and wait for the answer, so a transport without half-close of its own must
 *   carry it.
 * - `close()` releases the connection at once in both directions; pending reads and writes reject.
 * - `remoteAddr` is the peer as the transport sees it (a front may know the real client better).
 */
export type Conn = Pick<
  Deno.Conn,
  "read" | "write" | "closeWrite" | "close" | "localAddr" | "remoteAddr"
>;

/**
 * `conn` as seen from `peer`: a connection handed on over loopback, named by the client that
 * really opened it (for logs and limits).
 */
export function withPeer(conn: Conn, peer: Deno.NetAddr): Conn {
  return {
    read: (buffer) => conn.read(buffer),
    write: (data) => conn.write(data),
    closeWrite: () => conn.closeWrite(),
    close: () => conn.close(),
    localAddr: conn.localAddr,
    remoteAddr: peer,
  };
}

/**
 * A connection that passes everything on to `inner` but what a subclass overrides (its reads,
 * say).
 */
export class WrappedConn implements Conn {
  protected readonly inner: Conn;

  constructor(inner: Conn) {
    this.inner = inner;
  }

  get localAddr(): Deno.Addr {
    return this.inner.localAddr;
  }

  get remoteAddr(): Deno.Addr {
    return this.inner.remoteAddr;
  }

  read(into: Uint8Array): Promise<number | null> {
    return this.inner.read(into);
  }

  write(data: Uint8Array): Promise<number> {
    return this.inner.write(data);
  }

  closeWrite(): Promise<void> {
    return this.inner.closeWrite();
  }

  close(): void {
    this.inner.close();
  }
}

/** The part of a listener porthole uses. */
export interface Listener<C extends Conn = Conn> {
  readonly addr: Deno.Addr;
  accept(): Promise<C>;
  close(): void;
}

/** Turns off Nagle (interactive bytes go out at once) and turns on TCP keepalive. */
export function tune<C extends Conn>(conn: C): C {
  const tcp = conn as Partial<Deno.TcpConn>; // a TLS connection has no such methods
  try {
    tcp.setNoDelay?.(true);
    tcp.setKeepAlive?.(true);
  } catch {
    // the peer is already gone; the first read or write will say so
  }
  return conn;
}

/** Dials `to` over TCP with {@link tune} applied, failing after `timeoutMs`. */
export async function dial(
  to: HostPort,
  timeoutMs: number,
): Promise<Deno.TcpConn> {
  // Not AbortSignal.timeout: it keeps each signal, and the dial's state with it, alive for the
  // whole timeout even after the dial ended, which under a flood of clients adds up to megabytes.
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new DOMException("timed out", "TimeoutError")),
    timeoutMs,
  );
  try {
    const conn = await Deno.connect({
      hostname: to.hostname,
      port: to.port,
      signal: controller.signal,
    });
    return tune(conn);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Resolves as `work` does, unless `ms` pass first: then `conn` is closed (which ends whatever
 * `work` was waiting for on it) and the promise rejects with a message naming `what`.
 */
export async function deadline<T>(
  work: Promise<T>,
  ms: number,
  conn: Conn,
  what: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      closeQuietly(conn);
      reject(new Error(`${what} did not complete within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The byte arrays one after another, as one buffer (for one write). */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const all = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  parts.reduce((at, part) => (all.set(part, at), at + part.length), 0);
  return all;
}

/** Writes every byte of `data`, however many writes it takes. */
export async function writeAll(conn: Conn, data: Uint8Array): Promise<void> {
  for (let done = 0; done < data.length;) {
    done += await conn.write(data.subarray(done));
  }
}

/**
 * Reads exactly `length` bytes, and nothing beyond them; throws `the connection ended inside
 * <what>` if it ends first.
 */
export async function readExactly(conn: Conn, length: number, what: string): Promise<Uint8Array> {
  const bytes = new Uint8Array(length);
  for (let at = 0; at < length;) {
    const count = await conn.read(bytes.subarray(at));
    if (count === null) throw new Error(`the connection ended inside ${what}`);
    at += count;
  }
  return bytes;
}

/** Closes a connection, ignoring that it may already be closed. */
export function closeQuietly(conn: Conn | Listener): void {
  if (closed.has(conn)) return; // a second close would cost a thrown (and caught) error
  closed.add(conn);
  try {
    conn.close();
  } catch {
    // already closed elsewhere
  }
}

const closed = new WeakSet<Conn | Listener>();

/** A short reason for a socket error, for log lines ("connection refused", "timed out"). */
export function describeError(error: unknown): string {
  if (error instanceof DOMException && error.name === "TimeoutError") {
    return "timed out";
  }
  // Deno's errors, and node:net's codes (relay TLS connections, the agent's certificate fetch)
  const code = (error as { code?: unknown })?.code;
  if (error instanceof Deno.errors.ConnectionRefused || code === "ECONNREFUSED") {
    return "connection refused";
  }
  if (error instanceof Deno.errors.ConnectionReset || code === "ECONNRESET") {
    return "connection reset";
  }
  if (tlsProblem(error) === "abrupt close") {
    return "the peer closed the connection abruptly (no TLS close_notify)";
  }
  if (error instanceof Error) return error.message;
  return String(error);
}
