/**
 * How agent and relay reach each other: the seam every transport (plain TCP, TLS, and later
 * WebSocket, HTTP CONNECT and SOCKS5 proxies, QUIC) fits. The relay listens with an
 * {@link AgentTransport}; the agent dials with a {@link RelayDialer}. Both yield {@link Conn}s,
 * whose contract (half-close included) is written down on that type in `lib/net.ts`; nothing
 * else of a transport shows through to the relay or the agent.
 *
 * The agent's dialers are layered: a {@link Route} opens a TCP connection to the relay (directly,
 * or through an HTTP or SOCKS5 proxy), TLS may run over it, and a WebSocket over that.
 *
 * A new transport is one file beside `tcp.ts` and `tls.ts`, and one line where the entry script
 * picks it.
 */

import { type Conn, describeError, dial, type Listener } from "../net.ts";
import { type HostPort } from "../address.ts";

/** How the relay accepts agents' control and data channels (C1, C3) on its agent port. */
export interface AgentTransport {
  /** What agents must speak to this port, for logs: "TLS", "plain TCP". */
  readonly name: string;
  /** Listens on `address`; each accepted connection is a {@link Conn} ready for frames. */
  listen(address: HostPort): Promise<Listener>;
  /**
   * A hint to add to the log line of a connection that failed before its first frame, when the
   * failure says what the agent got wrong (such as plain TCP sent to a TLS port).
   */
  hint(error: unknown): string;
}

/** How an agent opens connections to its relay's agent port. */
export interface RelayDialer {
  /** The relay as the agent was told to reach it. */
  readonly relay: HostPort;
  /**
   * A new connection to the relay, failing after `timeoutMs`. Rejects with
   * {@link UntrustedRelayError} when retrying cannot help (the relay is not the one trusted).
   */
  dial(timeoutMs: number): Promise<Conn>;
}

/** How the agent's TCP connections reach an address: directly, or through a proxy. */
export interface Route {
  /** For logs: "direct", "via HTTP proxy proxy.corp:3128". */
  readonly name: string;
  /**
   * A TCP connection to `to`, failing after `timeoutMs`; rejects with {@link RouteError} when it
   * cannot be opened (so nothing else need be tried over this route for now).
   */
  open(to: HostPort, timeoutMs: number): Promise<Deno.TcpConn>;
}

/** Thrown by a {@link Route} that could not open a connection (unreachable, or refused by a proxy). */
export class RouteError extends Error {
  override name = "RouteError";
}

/** Straight to the address. */
export const direct: Route = {
  name: "direct",
  open: (to, timeoutMs) =>
    dial(to, timeoutMs).catch((error) => {
      throw new RouteError(describeError(error));
    }),
};

/** Thrown by a {@link RelayDialer} when the relay is not the one the agent trusts. */
export class UntrustedRelayError extends Error {
  override name = "UntrustedRelayError";
}
