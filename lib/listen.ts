/**
 * Listening on TCP and accepting from any {@link Listener}, with the socket options every
 * porthole connection uses ({@link tune}) and without stopping for a peer that left early.
 */

import { formatHostPort, type HostPort } from "./address.ts";
import { type Conn, type Listener, tune } from "./net.ts";

/** Pause before accepting again after an accept error (e.g. out of file descriptors). */
export const ACCEPT_RETRY_MS = 100;

/**
 * Errors of `accept` that mean one peer gave up before it was accepted (a load balancer's health
 * check that connects and resets, a client's SYN then RST): nothing is wrong with the listener.
 */
const PEER_GONE_BEFORE_ACCEPT = [
  Deno.errors.NotConnected,
  Deno.errors.ConnectionAborted,
  Deno.errors.ConnectionReset,
];

/**
 * Accepts connections until the listener is closed, handing each to `handle` after
 * {@link tune}. A peer that gave up before it was accepted is skipped quietly. Any other accept
 * error (such as running out of file descriptors) goes to `onError`, and accepting resumes after
 * {@link ACCEPT_RETRY_MS}.
 */
export async function acceptEach<C extends Conn>(
  listener: Listener<C>,
  handle: (conn: C) => void,
  onError: (error: Error) => void,
): Promise<void> {
  while (true) {
    let conn: C;
    try {
      conn = await listener.accept();
    } catch (error) {
      if (
        error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted
      ) return;
      if (PEER_GONE_BEFORE_ACCEPT.some((kind) => error instanceof kind)) continue;
      onError(error as Error);
      await new Promise((resolve) => setTimeout(resolve, ACCEPT_RETRY_MS));
      continue;
    }
    handle(tune(conn));
  }
}

/**
 * Listens on `address` over TCP; throws `cannot listen for <what> on <address>: <why>` if it
 * cannot.
 */
export function listenTcp(address: HostPort, what: string): Deno.TcpListener {
  try {
    return Deno.listen({ hostname: address.hostname, port: address.port });
  } catch (error) {
    throw new Error(
      `cannot listen for ${what} on ${formatHostPort(address)}: ${(error as Error).message}`,
    );
  }
}
