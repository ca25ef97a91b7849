/**
 * Plain TCP between agent and relay: no encryption, what `--insecure` selects on both sides.
 * A TLS hello sent to this port is recognised by the frame reader (lib/protocol.ts), which says
 * that one side runs with `--insecure`.
 */

import type { Conn, Listener } from "../net.ts";
import type { HostPort } from "../address.ts";
import { type AgentTransport, direct, type RelayDialer, type Route } from "./transport.ts";

/** The relay's agent port over plain TCP. */
export const plainTcp: AgentTransport = {
  name: "plain TCP",
  listen: (address: HostPort): Promise<Listener> =>
    Promise.resolve(Deno.listen({ hostname: address.hostname, port: address.port })),
  hint: () => "",
};

/** Dials the relay over plain TCP, by `route`. */
export class TcpDialer implements RelayDialer {
  readonly relay: HostPort;
  #route: Route;

  constructor(relay: HostPort, route: Route = direct) {
    this.relay = relay;
    this.#route = route;
  }

  /** A TCP connection to the relay, failing after `timeoutMs`. */
  dial(timeoutMs: number): Promise<Conn> {
    return this.#route.open(this.relay, timeoutMs);
  }
}
