/**
 * The relay's TLS listener for agents, on `node:tls` rather than `Deno.listenTls`, serving
 * {@link Conn}s that do their TLS handshake on first use, as a `Deno.TlsConn` does.
 *
 * Why not `Deno.listenTls`: its sockets cannot turn Nagle's algorithm off (a `Deno.TlsConn` has no
 * `setNoDelay`). On the relay that cost ~40 ms on every new tunneled connection: its first small
 * write after the TLS 1.3 session tickets waited for the agent's delayed ACK.
 *
 * Sockets here have Nagle off and TCP keepalive on, like every other porthole socket.
 *
 * One workaround of Deno 2.9's `node:tls` is kept here: a TLS socket paused for backpressure
 * (`pause()`, or reading in paused mode) loses the peer's end-of-stream, so reading is paused on
 * the TCP handle under it instead (`tests/node_tls_test.ts` checks that such a transfer still
 * ends). A Deno without that handle gets `pause()`/`resume()`.
 *
 * And one of V8's: every read of a `node:tls` socket allocates fresh ArrayBuffers (for the TCP
 * read, then for the plaintext). They die young, but V8 runs a young collection only when its
 * small young heap of JS objects fills, and counts the dead buffers against its global limit
 * meanwhile; so it fell back on a full mark-compact every ~10 MiB received, and the relay spent
 * 2.8 s of CPU per GiB sent from a server to a client over TLS. So when `gc` is exposed
 * (`--expose-gc`, as lib/launch.ts runs the relay) the young generation is collected every
 * {@link YOUNG_GC_EVERY_BYTES} received: 1.1 s per GiB.
 */

import net from "node:net";
import tls from "node:tls";
import type { Conn, Listener } from "../net.ts";
import type { HostPort } from "../address.ts";

/** Plaintext a connection buffers before it stops reading from its socket. */
export const READ_BUFFER_BYTES = 64 * 1024;

/**
 * Plaintext received (by all connections together) between two young collections. Measured on
 * 1 GiB downloads: 256 KiB to 1 MiB all cut the cost alike; from 4 MiB, full collections return.
 */
export const YOUNG_GC_EVERY_BYTES = 512 * 1024;

const gc = (globalThis as { gc?: (options: { type: "minor" }) => void }).gc;
let receivedSinceYoungGc = 0;

/** False when V8 was started without `--expose-gc`: receiving over TLS then costs ~2.5× the CPU. */
export const canCollectYoungGeneration = gc !== undefined;

/** Counts `bytes` received, and collects the young generation each YOUNG_GC_EVERY_BYTES. */
function receivedPlaintext(bytes: number): void {
  receivedSinceYoungGc += bytes;
  if (receivedSinceYoungGc < YOUNG_GC_EVERY_BYTES || !gc) return;
  receivedSinceYoungGc = 0;
  gc({ type: "minor" });
}

/** The TCP handle under a `node:tls` socket in Deno 2.9 (an internal, not a public API). */
interface TcpHandle {
  readStop(): unknown;
  readStart(): unknown;
}

function tcpHandleOf(socket: tls.TLSSocket): TcpHandle | undefined {
  // deno-lint-ignore no-explicit-any
  const handle = (socket as any)._handle?._nativeTcpHandle;
  return typeof handle?.readStop === "function" ? handle : undefined;
}

function netAddr(hostname: string | undefined, port: number | undefined): Deno.NetAddr {
  return { transport: "tcp", hostname: hostname ?? "", port: port ?? 0 };
}

/** A server-side TLS connection over a TCP socket that has Nagle off. */
class NodeTlsConn implements Conn {
  readonly remoteAddr: Deno.NetAddr;
  readonly localAddr: Deno.NetAddr;
  #socket: tls.TLSSocket;
  #tcp: TcpHandle;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #stopped = false;
  #ended = false;
  #closed = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;

  constructor(raw: net.Socket, secureContext: tls.SecureContext) {
    raw.setNoDelay(true);
    raw.setKeepAlive(true);
    this.remoteAddr = netAddr(raw.remoteAddress, raw.remotePort);
    this.localAddr = netAddr(raw.localAddress, raw.localPort);
    const socket = new tls.TLSSocket(raw, { isServer: true, secureContext });
    this.#socket = socket;
    this.#tcp = tcpHandleOf(socket) ??
      { readStop: () => socket.pause(), readStart: () => socket.resume() };
    socket.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      receivedPlaintext(chunk.length);
      this.#buffered += chunk.length;
      if (this.#buffered > READ_BUFFER_BYTES && !this.#stopped) {
        this.#stopped = true;
        this.#tcp.readStop();
      }
      this.#wakeReader();
    });
    socket.on("error", (error: Error) => {
      this.#error ??= error;
      this.#wakeReader();
    });
    const end = () => {
      this.#ended = true;
      this.#wakeReader();
    };
    socket.on("end", end);
    socket.on("close", end);
  }

  #wakeReader(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Reads decrypted bytes, as `Deno.Conn.read` does: a count, or null at end-of-stream. */
  async read(into: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#error) throw this.#error;
      // Built only when a read meets it: most connections are closed with no read pending.
      if (this.#closed) throw new Deno.errors.BadResource("the connection is closed");
      if (this.#ended) return null;
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    const head = this.#chunks[0];
    const count = Math.min(into.length, head.length);
    into.set(head.subarray(0, count));
    if (count < head.length) this.#chunks[0] = head.subarray(count);
    else this.#chunks.shift();
    this.#buffered -= count;
    if (this.#stopped && this.#buffered <= READ_BUFFER_BYTES / 2) {
      this.#stopped = false;
      this.#tcp.readStart();
    }
    return count;
  }

  /** Writes all of `data`; resolves once the socket has taken it (so `data` may be reused). */
  write(data: Uint8Array): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#socket.write(data, (error) => error ? reject(error) : resolve(data.length));
    });
  }

  /** Ends the sending direction (TLS close_notify, then FIN); reading goes on. */
  closeWrite(): Promise<void> {
    if (this.#socket.destroyed) return Promise.reject(new Deno.errors.NotConnected());
    return new Promise((resolve) => {
      this.#socket.once("close", resolve);
      this.#socket.end(resolve);
    });
  }

  /** Closes the connection at once, releasing its socket; a pending read throws, as Deno's do. */
  close(): void {
    this.#closed = true;
    this.#socket.destroy();
    this.#wakeReader();
  }
}

/** A TLS listener whose certificate can be replaced (for connections accepted from then on). */
export interface TlsListener extends Listener {
  setCertificate(certified: { cert: string; key: string }): void;
}

/**
 * Listens for TLS connections with `certified`; each comes out of `accept()` as soon as TCP has
 * it, and does its handshake on first read or write (a failed handshake fails that call).
 */
export async function listenTls(
  address: HostPort,
  certified: { cert: string; key: string },
): Promise<TlsListener> {
  let secureContext = tls.createSecureContext(certified);
  const accepted: Conn[] = [];
  let waiting: { resolve: (conn: Conn) => void; reject: (error: Error) => void } | undefined;
  let failure: Error | undefined;
  const server = net.createServer({ allowHalfOpen: true }, (raw) => {
    if (raw.remoteAddress === undefined) {
      raw.destroy(); // reset by the peer before it was accepted: nothing to serve
      return;
    }
    const conn = new NodeTlsConn(raw, secureContext);
    if (waiting) waiting.resolve(conn);
    else accepted.push(conn);
    waiting = undefined;
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: address.hostname, port: address.port }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  let closed = false;
  server.on("error", (error: Error) => { // an accept failure, e.g. out of descriptors
    if (waiting) waiting.reject(error);
    else failure = error;
    waiting = undefined;
  });
  const bound = server.address() as net.AddressInfo;
  return {
    addr: netAddr(bound.address, bound.port),
    accept(): Promise<Conn> {
      const conn = accepted.shift();
      if (conn) return Promise.resolve(conn);
      if (closed) return Promise.reject(new Deno.errors.BadResource("the listener is closed"));
      if (failure) {
        const error = failure;
        failure = undefined;
        return Promise.reject(error);
      }
      return new Promise((resolve, reject) => waiting = { resolve, reject });
    },
    setCertificate(next): void {
      secureContext = tls.createSecureContext(next);
    },
    close(): void {
      closed = true;
      server.close();
      waiting?.reject(new Deno.errors.BadResource("the listener is closed"));
      waiting = undefined;
    },
  };
}
