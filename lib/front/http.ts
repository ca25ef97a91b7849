/**
 * The HTTP front (`--http`): one public port for every HTTP service, routed by the Host header
 * (or an absolute request URI). The bytes read to find the host go to the service first; after
 * that the connection is spliced raw, so keep-alive, pipelining, chunked bodies, large uploads
 * and WebSocket upgrades pass untouched. A service answers to `ID.DOMAIN` (`--domain`).
 *
 * Clients it cannot route get a small response that names no other service: 400 or 408 for no
 * complete request head, 404 for an unknown host, 502 when the service is offline or cannot be
 * reached, 403 when the access rules refuse the client.
 */

import { acceptEach, closeQuietly, type Conn, type HostPort, listenTcp, writeAll } from "../net.ts";
import type { Arrival, Front, FrontContext, PublishRequest, Refusal } from "./front.ts";
import { HEAD_TIMEOUT_MS, readRequestHead } from "./http_head.ts";

/** How the HTTP front is set up. */
export interface HttpFrontOptions {
  /** Where it listens. */
  listen: HostPort;
  /** The domain whose subdomains name services: `web.DOMAIN` reaches service web. */
  domain: string;
  /** Time a client has to send its request head (default {@link HEAD_TIMEOUT_MS}). */
  headTimeoutMs?: number;
}

/** How long a client that is answered with an error may go on sending before it is closed. */
export const LINGER_MS = 2_000;

const STATUS_TEXT = {
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  408: "Request Timeout",
  502: "Bad Gateway",
};

/** An HTTP response that ends the connection: status line, a plain-text body of one line. */
export function httpError(status: keyof typeof STATUS_TEXT, body: string): Uint8Array {
  const text = `${body}\n`;
  return new TextEncoder().encode(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${
        new TextEncoder().encode(text).length
      }\r\nConnection: close\r\n\r\n${text}`,
  );
}

const REFUSALS: Record<Refusal, [502 | 403, string]> = {
  offline: [502, "the service is offline"],
  unreachable: [502, "the service cannot be reached"],
  denied: [403, "access refused"],
};

/** Services by host name on one shared port. */
export class HttpFront implements Front {
  /** Where it listens, with the actual port when 0 was asked for. */
  readonly address: HostPort;
  #listener: Deno.TcpListener;
  #options: HttpFrontOptions;
  #context: FrontContext;
  /**
   * Host name → service id. A service that goes offline keeps its names while the relay runs
   * (unless it comes back as another kind), so its clients are told 502, not 404.
   */
  #hosts = new Map<string, string>();

  private constructor(
    listener: Deno.TcpListener,
    options: HttpFrontOptions,
    context: FrontContext,
  ) {
    this.#listener = listener;
    this.#options = options;
    this.#context = context;
    this.address = {
      hostname: options.listen.hostname,
      port: (listener.addr as Deno.NetAddr).port,
    };
    acceptEach(listener, (conn) => this.#route(conn), context.onAcceptError);
  }

  /** Listens on `options.listen`; throws naming the address if it cannot. */
  static open(options: HttpFrontOptions, context: FrontContext): HttpFront {
    return new HttpFront(listenTcp(options.listen, "HTTP clients"), options, context);
  }

  publish({ service, kind }: PublishRequest): { address: string } | undefined {
    for (const [host, id] of this.#hosts) if (id === service) this.#hosts.delete(host);
    if (kind !== "http") return undefined;
    const host = `${service}.${this.#options.domain}`.toLowerCase();
    this.#hosts.set(host, service);
    const port = this.address.port === 80 ? "" : `:${this.address.port}`;
    return { address: `http://${host}${port}/` };
  }

  withdraw(): void {
    // Names stay: see #hosts.
  }

  refuse(arrival: Arrival, why: Refusal): void {
    const [status, text] = REFUSALS[why];
    answer(arrival.conn, httpError(status, text));
  }

  close(): void {
    closeQuietly(this.#listener);
  }

  async #route(conn: Deno.TcpConn): Promise<void> {
    const head = await readRequestHead(conn, this.#options.headTimeoutMs ?? HEAD_TIMEOUT_MS);
    if (head.kind === "gone") return closeQuietly(conn);
    if (head.kind === "bad") return answer(conn, httpError(head.status, head.why));
    const service = this.#hosts.get(head.host);
    if (service === undefined) {
      return answer(conn, httpError(404, `no service is published at ${head.host}`));
    }
    this.#context.arrive({ service, conn, client: conn.remoteAddr, head: head.bytes, front: this });
  }
}

/**
 * Writes `response`, ends the sending direction, and reads (and drops) what the client still
 * sends for up to {@link LINGER_MS} before closing: closing with unread bytes would reset the
 * connection, and the client could lose the response.
 */
export function answer(conn: Conn, response: Uint8Array): void {
  const timer = setTimeout(() => closeQuietly(conn), LINGER_MS);
  (async () => {
    await writeAll(conn, response);
    await conn.closeWrite();
    const sink = new Uint8Array(4096);
    while (await conn.read(sink) !== null);
  })().catch(() => {}).finally(() => {
    clearTimeout(timer);
    closeQuietly(conn);
  });
}
