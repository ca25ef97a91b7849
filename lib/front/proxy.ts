/**
 * The proxy front (`--proxy`): clients that speak SOCKS5 (RFC 1928, CONNECT to a host name) or
 * HTTP CONNECT, on the same port, name the service as the target host: its id, or `ID.DOMAIN`;
 * any target port will do. This is how the relay asks a client which server it wants (S5 in
 * docs/flow.md). It is never an open proxy: a target that is no service of this relay (an IP
 * address, any other host) is refused, and logged once a minute per source address.
 *
 * The success reply waits until the service's data channel is up, so that a client of an
 * offline or unreachable service gets a SOCKS reply code or an HTTP status that says so.
 */

import { createLogger } from "../log.ts";
import { closeQuietly, type Conn, deadline } from "../net.ts";
import { acceptEach, listenTcp } from "../listen.ts";
import { formatHostPort, type HostPort } from "../address.ts";
import { LogThrottle } from "../throttle.ts";
import type {
  Arrival,
  Credentials,
  Front,
  FrontContext,
  PublishRequest,
  Refusal,
} from "./front.ts";
import { HostNames } from "./host_names.ts";
import { answer, basicCredentials, httpError } from "./http_route.ts";
import { HEAD_TIMEOUT_MS, readRequestHead } from "../http_head.ts";
import { SOCKS_VERSION, SocksReply } from "../socks5.ts";
import { readSocksRequest, socksReply } from "./socks.ts";

/** How the proxy front is set up. */
export interface ProxyFrontOptions {
  listen: HostPort;
  /** The domain of the services' host names (`ID.DOMAIN`), if the relay has one. */
  domain?: string;
  /** Time a client has to name its target (default {@link HEAD_TIMEOUT_MS}). */
  requestTimeoutMs?: number;
}

/** Why a proxy client is turned away: the relay's reasons, and the front's own. */
type Outcome = Refusal | "unknown" | "forbidden";

const SOCKS_REPLIES: Record<Outcome, SocksReply> = {
  offline: SocksReply.NetworkUnreachable,
  unreachable: SocksReply.ConnectionRefused,
  denied: SocksReply.NotAllowed,
  unauthorized: SocksReply.NotAllowed,
  unknown: SocksReply.HostUnreachable,
  forbidden: SocksReply.NotAllowed,
};
const HTTP_REPLIES: Record<Outcome, [403 | 404 | 407 | 502, string]> = {
  offline: [502, "the service is offline"],
  unreachable: [502, "the service cannot be reached"],
  denied: [403, "access refused"],
  unauthorized: [407, "this service needs a user name and password"],
  unknown: [404, "no such service on this relay"],
  forbidden: [403, "this relay reaches only its own services, by name"],
};
const CONNECTED = new TextEncoder().encode("HTTP/1.1 200 Connection established\r\n\r\n");

type Dialect = "socks" | "http";
/**
 * The host a client asks for, the bytes it sent after its request, and the credentials it gave;
 * or void once answered.
 */
type Target = { host: string; head: Uint8Array; credentials?: Credentials } | void;

const log = createLogger("relay");

/** SOCKS5 and HTTP CONNECT on one port. */
export class ProxyFront implements Front {
  readonly name = "proxy";
  /** Where it listens, with the actual port when 0 was asked for. */
  readonly address: HostPort;
  #listener: Deno.TcpListener;
  #options: ProxyFrontOptions;
  #context: FrontContext;
  /** A service's id, `ID.DOMAIN` and claimed names, of every kind. */
  #names: HostNames;
  /** Which protocol each client waiting for its tunnel speaks. */
  #dialects = new WeakMap<Arrival, Dialect>();
  #throttle = new LogThrottle();

  private constructor(
    listener: Deno.TcpListener,
    options: ProxyFrontOptions,
    context: FrontContext,
  ) {
    this.#listener = listener;
    this.#options = options;
    this.#context = context;
    this.#names = new HostNames({ domain: options.domain, bareIds: true });
    this.address = { hostname: options.listen.hostname, port: listener.addr.port };
    acceptEach(listener, (conn) => this.#serve(conn), context.onAcceptError);
  }

  /** Listens on `options.listen`; throws naming the address if it cannot. */
  static open(options: ProxyFrontOptions, context: FrontContext): ProxyFront {
    return new ProxyFront(listenTcp(options.listen, "proxy clients"), options, context);
  }

  publish(request: PublishRequest): { address: string } | { reason: string } | undefined {
    const named = this.#names.publish(request);
    if (!named || "reason" in named) return named;
    return { address: `proxy ${formatHostPort(this.address)} (target ${request.service})` };
  }

  withdraw(service: string): void {
    this.#names.withdraw(service);
  }

  refuse(arrival: Arrival, why: Refusal): void {
    this.#tell(arrival.conn, this.#dialects.get(arrival) ?? "socks", why);
  }

  welcome(arrival: Arrival): Uint8Array {
    return this.#dialects.get(arrival) === "http" ? CONNECTED : socksReply(SocksReply.Succeeded);
  }

  close(): void {
    closeQuietly(this.#listener);
  }

  #tell(conn: Conn, dialect: Dialect, outcome: Outcome): void {
    if (dialect === "socks") return answer(conn, socksReply(SOCKS_REPLIES[outcome]));
    const [status, text] = HTTP_REPLIES[outcome];
    const challenge = status === 407 ? ['Proxy-Authenticate: Basic realm="porthole"'] : [];
    answer(conn, httpError(status, text, challenge));
  }

  async #serve(conn: Deno.TcpConn): Promise<void> {
    const client = await this.#context.clientOf(conn);
    if (!client) return;
    const timeoutMs = this.#options.requestTimeoutMs ?? HEAD_TIMEOUT_MS;
    const first = new Uint8Array(1);
    let target: Target;
    let dialect: Dialect = "socks";
    try {
      if (await deadline(conn.read(first), timeoutMs, conn, "the proxy request") === null) {
        return closeQuietly(conn);
      }
      dialect = first[0] === SOCKS_VERSION ? "socks" : "http";
      target = dialect === "socks"
        ? await this.#socksTarget(conn, first, timeoutMs)
        : await this.#connectTarget(conn, first, timeoutMs);
    } catch {
      return closeQuietly(conn); // reset, or silent past the deadline (which closed it)
    }
    if (!target) return;
    const service = this.#names.serviceAt(target.host);
    if (service === undefined) {
      this.#logStranger(conn, target.host);
      return this.#tell(conn, dialect, /^[\d.]+$|:/.test(target.host) ? "forbidden" : "unknown");
    }
    const { head, credentials } = target;
    const arrival = { service, conn, client, head, front: this, credentials };
    this.#dialects.set(arrival, dialect);
    this.#context.arrive(arrival);
  }

  /** The host a SOCKS5 client asks for, and what it sent after; undefined once answered. */
  async #socksTarget(conn: Deno.TcpConn, first: Uint8Array, timeoutMs: number): Promise<Target> {
    const request = await deadline(readSocksRequest(conn, first), timeoutMs, conn, "SOCKS");
    if (request.kind === "gone") return closeQuietly(conn);
    if (request.kind === "bad") return answer(conn, socksReply(request.reply));
    if (request.kind === "address") return { host: request.address, head: new Uint8Array(0) };
    return { host: request.host, head: request.rest, credentials: request.credentials };
  }

  /** The host an HTTP CONNECT asks for, and what came after its head; undefined once answered. */
  async #connectTarget(conn: Deno.TcpConn, first: Uint8Array, timeoutMs: number): Promise<Target> {
    const head = await readRequestHead(conn, timeoutMs, first);
    if (head.kind === "gone") return closeQuietly(conn);
    if (head.kind === "bad") return answer(conn, httpError(head.status, head.why));
    if (!head.text.startsWith("CONNECT ")) {
      return answer(conn, httpError(400, "this port takes SOCKS5 or HTTP CONNECT"));
    }
    const credentials = basicCredentials(head.text, "proxy-authorization");
    return { host: head.host, head: head.bytes.slice(head.length), credentials };
  }

  #logStranger(conn: Deno.TcpConn, target: string): void {
    const { hostname } = conn.remoteAddr;
    this.#throttle.pass(hostname, (note) => {
      log.warn(
        `proxy client ${formatHostPort(conn.remoteAddr)} asked for ${target}, which is no ` +
          `service of this relay; refused (it is no open proxy)${note}`,
      );
    });
  }
}
