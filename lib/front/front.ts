/**
 * How clients arrive at the relay and name the service they want (S5 in docs/flow.md): the seam
 * every front fits. Today's front is a public port per service (lib/front/ports.ts); fronts that
 * read the name from the client's own bytes (HTTP Host, TLS SNI, SOCKS5 and HTTP CONNECT) sit
 * beside it.
 *
 * A front accepts a client, learns which service it asks for, and hands the relay an
 * {@link Arrival}: the service's id, the connection, the client's address, and the bytes it read
 * to learn the name, which the relay forwards to the service first. It publishes the services
 * the relay brings online, and tells a client the relay cannot serve why, in its own terms (a
 * port front closes; an HTTP front would answer 502).
 */

import type { Conn } from "../net.ts";
import type { ServiceKind } from "../protocol.ts";

/** A client that arrived at a front, and the service it asked for. */
export interface Arrival {
  /** The service id the client named (by the port it dialled, a host name, a proxy target). */
  service: string;
  /** The client's connection, positioned after `head`. */
  conn: Conn;
  /** The client's address, for access rules and logs. */
  client: Deno.NetAddr;
  /** Bytes the front read to learn the name; they reach the service before any others. */
  head: Uint8Array;
  /** The front it came through, which knows how to turn it away. */
  front: Front;
  /** The user and password the client presented (an HTTP request's Basic authorization). */
  credentials?: Credentials;
}

/** A visitor's user name and password. */
export interface Credentials {
  user: string;
  password: string;
}

/** Why the relay turns a client away, for the front to tell it in its own terms. */
export type Refusal =
  /** No agent serves the service now. */
  | "offline"
  /** The client is not admitted (access rules, limits). */
  | "denied"
  /** The service lets in named visitors only, and the client is none of them. */
  | "unauthorized"
  /** The agent could not or would not reach the service, or opened no data channel in time. */
  | "unreachable";

/** What the relay hands a front: where arrivals go, and what to do with accept errors. */
export interface FrontContext {
  /** Takes over a client the front accepted. */
  arrive(arrival: Arrival): void;
  /** Reports a failure to accept (such as running out of descriptors); accepting goes on. */
  onAcceptError(error: Error): void;
  /**
   * The address a newly accepted client really comes from (a trusted load balancer's PROXY
   * header may name it), or undefined when it is turned away (already closed).
   */
  clientOf(conn: Deno.TcpConn): Promise<Deno.NetAddr | undefined>;
}

/** A service the relay asks its fronts to publish. */
export interface PublishRequest {
  service: string;
  /** What it speaks, which decides the fronts that carry it. */
  kind: ServiceKind;
  /** The public port its agent asked for, if any. */
  port?: number;
  /** Host names its agent claimed besides `ID.DOMAIN` (allowed by the relay's config). */
  hosts?: readonly string[];
}

/** A way clients arrive. */
export interface Front {
  /** Its short name, for the status line: `ports`, `http`, `https`, `proxy`. */
  readonly name: string;
  /**
   * Publishes a service that came online: where clients reach it through this front (as they
   * would write it: `relay.example.com:20000`, `http://web.example.com/`), why it cannot, or
   * undefined when this front does not carry such a service.
   */
  publish(request: PublishRequest): { address: string } | { reason: string } | undefined;
  /** Stops publishing a service that went offline. */
  withdraw(service: string): void;
  /** Tells a client it cannot be served, in this front's terms, and closes it. */
  refuse(arrival: Arrival, why: Refusal): void;
  /**
   * Bytes the client gets once its data channel is up, before any of the service's: a proxy's
   * success reply, which must not be sent while the service may still be unreachable.
   */
  welcome?(arrival: Arrival): Uint8Array;
  /** Stops accepting clients (those already handed over stay). */
  close(): void;
  /**
   * Stops taking clients but goes on passing agents to the agent port, for a front that agents
   * share (the HTTPS front's agent names): the relay's drain, until `close`. Without it, the
   * drain closes the front.
   */
  closeToClients?(): void;
}
