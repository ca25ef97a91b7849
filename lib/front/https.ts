/**
 * The HTTPS front (`--https`): one TLS port for every service named under the domain, routed by
 * the server name (SNI) of the client's ClientHello, read without terminating TLS.
 *
 * - A `tls://` service (one that speaks TLS itself) is passed through: the ClientHello goes to it
 *   first and the connection is spliced raw, so its own certificate reaches the client.
 * - Any other name of the domain is terminated with the operator's certificate for it
 *   (lib/front/certificates.ts) and routed by Host like the HTTP front: an `http://` service
 *   gets HTTPS for free. Termination runs on a TLS listener of the relay's own on loopback, one
 *   per certificate, which the front hands such a client to, remembering the client's address.
 * - The relay's own names for agents (`--https-agents`) are handed on, ClientHello first, to the
 *   agent port over loopback, where the relay's own certificate answers: agents in networks that
 *   pass only port 443 share it with browsers.
 * - No server name, one outside the domain, or one no certificate covers: the connection is
 *   closed.
 */

import { closeQuietly, type Conn, writeAll } from "../net.ts";
import { acceptEach, listenTcp } from "../listen.ts";
import { type HostPort, isUnspecified } from "../address.ts";
import { splice } from "../splice.ts";
import type { CertifiedKey } from "../transport/certificate.ts";
import { listenTls, type TlsListener } from "../transport/node_tls.ts";
import type { CertificateProvider } from "./certificates.ts";
import { readClientHello } from "./client_hello.ts";
import type { Arrival, Front, FrontContext, PublishRequest, Refusal } from "./front.ts";
import { HEAD_TIMEOUT_MS } from "../http_head.ts";
import { HostNames } from "./host_names.ts";
import { refuseHttp, routeHttp } from "./http_route.ts";

/** How the HTTPS front is set up. */
export interface HttpsFrontOptions {
  listen: HostPort;
  /** The domain whose names it routes: `ID.DOMAIN`. */
  domain: string;
  /** The operator's certificates for the names it terminates (a wildcard for `*.DOMAIN`). */
  certificates: CertificateProvider;
  /** Time a client has to send its ClientHello, and then its request head. */
  timeoutMs?: number;
  /** Server names that are the relay's own, for agents, and where the agent port listens. */
  agents?: { names: string[]; port: () => HostPort };
}

/** Services by TLS server name on one shared port. */
export class HttpsFront implements Front {
  readonly name = "https";
  /** Where it listens, with the actual port when 0 was asked for. */
  readonly address: HostPort;
  #listener: Deno.TcpListener;
  /** A loopback TLS listener per certificate, opened when a name first needs it. */
  #terminators = new Map<CertifiedKey, Promise<TlsListener>>();
  #certificates: CertificateProvider;
  #options: HttpsFrontOptions;
  #context: FrontContext;
  #web: HostNames;
  #passthrough: HostNames;
  /** Port of the front's end of a connection to the terminator → the client it carries. */
  #clients = new Map<number, Deno.NetAddr>();
  /** The same for connections handed on to the agent port. */
  #agents = new Map<number, Deno.NetAddr>();
  #agentNames: Set<string>;
  #passedThrough = new WeakSet<Arrival>();
  #onlyAgents = false;

  private constructor(
    listener: Deno.TcpListener,
    options: HttpsFrontOptions,
    context: FrontContext,
  ) {
    this.#listener = listener;
    this.#certificates = options.certificates;
    this.#options = options;
    this.#context = context;
    this.#web = new HostNames({ domain: options.domain, kind: "http" });
    this.#passthrough = new HostNames({ domain: options.domain, kind: "tls" });
    this.#agentNames = new Set(options.agents?.names.map((name) => name.toLowerCase()));
    this.address = { hostname: options.listen.hostname, port: listener.addr.port };
    acceptEach(listener, (conn) => this.#route(conn), context.onAcceptError);
  }

  /** Listens on `options.listen`; throws if it cannot. */
  static open(options: HttpsFrontOptions, context: FrontContext): HttpsFront {
    return new HttpsFront(listenTcp(options.listen, "HTTPS clients"), options, context);
  }

  /**
   * The agent that opened `conn`, a connection the agent port accepted, if this front handed it
   * on; looked up once, after its first bytes (by then the front has noted it).
   */
  agentOf(conn: Conn): Deno.NetAddr | undefined {
    const { hostname, port } = conn.remoteAddr as Deno.NetAddr;
    if (hostname !== "127.0.0.1" && hostname !== "::1") return undefined;
    const agent = this.#agents.get(port);
    this.#agents.delete(port);
    return agent;
  }

  /** Terminates with `certificates` from now on (SIGHUP); connections up now keep theirs. */
  setCertificates(certificates: CertificateProvider): void {
    this.#certificates = certificates;
    this.#closeTerminators();
  }

  publish(request: PublishRequest): { address: string } | { reason: string } | undefined {
    const named = this.#web.publish(request) ?? this.#passthrough.publish(request);
    if (!named || "reason" in named) return named;
    const port = this.address.port === 443 ? "" : `:${this.address.port}`;
    const own = request.kind === "tls" ? " (its own TLS)" : "";
    return { address: `https://${named.host}${port}/${own}` };
  }

  withdraw(service: string): void {
    this.#web.withdraw(service);
    this.#passthrough.withdraw(service);
  }

  refuse(arrival: Arrival, why: Refusal): void {
    if (this.#passedThrough.has(arrival)) closeQuietly(arrival.conn);
    else refuseHttp(arrival, why);
  }

  close(): void {
    closeQuietly(this.#listener);
    this.#closeTerminators();
  }

  closeToClients(): void {
    this.#onlyAgents = true;
    this.#closeTerminators();
  }

  #closeTerminators(): void {
    for (const terminator of this.#terminators.values()) terminator.then(closeQuietly, () => {});
    this.#terminators.clear();
  }

  /** The loopback TLS listener that terminates with `certificate`. */
  #terminatorFor(certificate: CertifiedKey): Promise<TlsListener> {
    let terminator = this.#terminators.get(certificate);
    if (!terminator) {
      terminator = listenTls({ hostname: "127.0.0.1", port: 0 }, certificate);
      terminator.then(
        (listener) =>
          acceptEach(listener, (conn) => this.#routeDecrypted(conn), this.#context.onAcceptError),
        () => this.#terminators.delete(certificate),
      );
      this.#terminators.set(certificate, terminator);
    }
    return terminator;
  }

  async #route(conn: Deno.TcpConn): Promise<void> {
    const client = await this.#context.clientOf(conn);
    if (!client) return;
    const hello = await readClientHello(conn, this.#options.timeoutMs ?? HEAD_TIMEOUT_MS);
    const name = hello.kind === "hello" ? hello.serverName : undefined;
    if (hello.kind !== "hello" || name === undefined) return closeQuietly(conn);
    if (this.#agentNames.has(name) && this.#options.agents) {
      return this.#handOn(conn, client, hello.bytes, this.#options.agents.port(), this.#agents);
    }
    if (this.#onlyAgents) return closeQuietly(conn);
    const service = this.#passthrough.serviceAt(name);
    if (service !== undefined) {
      const arrival = { service, conn, client, head: hello.bytes, front: this };
      this.#passedThrough.add(arrival);
      return this.#context.arrive(arrival);
    }
    const ours = name.endsWith(`.${this.#options.domain}`) || this.#web.serviceAt(name);
    const certificate = ours ? this.#certificates.certificateFor(name) : undefined;
    if (!certificate) return closeQuietly(conn);
    const to = await this.#terminatorFor(certificate).then((listener) => listener.addr, () => null);
    if (!to) return closeQuietly(conn);
    await this.#handOn(conn, client, hello.bytes, to as Deno.NetAddr, this.#clients);
  }

  /**
   * Hands a client on over loopback to `to` (the terminator, or the agent port), noting in
   * `clients` whose it is: the ClientHello first, then everything both ways.
   */
  async #handOn(
    conn: Deno.TcpConn,
    client: Deno.NetAddr,
    hello: Uint8Array,
    to: HostPort,
    clients: Map<number, Deno.NetAddr>,
  ): Promise<void> {
    let inner: Deno.TcpConn;
    try {
      inner = await Deno.connect({ hostname: dialable(to.hostname), port: to.port });
      inner.setNoDelay(true);
      clients.set(inner.localAddr.port, client);
      await writeAll(inner, hello);
    } catch {
      return closeQuietly(conn);
    }
    await splice(conn, inner);
    const port = inner.localAddr.port; // if it was never looked up, the entry is still there
    if (clients.get(port) === client) clients.delete(port);
  }

  /** Routes a client the terminator decrypted, once its request head is read. */
  #routeDecrypted(conn: Conn): void {
    // Looked up after the head: the terminator may accept before #handOn has noted the client.
    const clientOf = () => {
      const port = (conn.remoteAddr as Deno.NetAddr).port;
      const client = this.#clients.get(port);
      this.#clients.delete(port);
      return client; // undefined: not from this front
    };
    routeHttp(conn, clientOf, this.#web, this, this.#context, this.#options.timeoutMs);
  }
}

/** Where to dial a listener bound to `hostname`: its loopback if it is bound to every address. */
function dialable(hostname: string): string {
  return isUnspecified(hostname) ? (hostname.includes(":") ? "::1" : "127.0.0.1") : hostname;
}
