/**
 * How agent and relay reach each other: the seam every transport (plain TCP, TLS, and later
 * WebSocket, HTTP CONNECT and SOCKS5 proxies, QUIC) fits. The relay listens with an
 * {@link AgentTransport}; the agent dials with a {@link RelayDialer}. Both yield {@link Conn}s,
 * whose contract (half-close included) is written down on that type in `lib/net.ts`; nothing
 * else of a transport shows through to the relay or the agent.
 *
 * A new transport is one file beside `tcp.ts` and `tls.ts`, and one line where the entry script
 * picks it.
 */

import type { Conn, HostPort, Listener } from "../net.ts";

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

/** Thrown by a {@link RelayDialer} when the relay is not the one the agent trusts. */
export class UntrustedRelayError extends Error {
  override name = "UntrustedRelayError";
}
