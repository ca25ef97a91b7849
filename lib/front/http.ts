/**
 * The HTTP front (`--http`): one public port for every HTTP service, routed by the Host header
 * (or an absolute request URI). The bytes read to find the host go to the service first; after
 * that the connection is spliced raw, so keep-alive, pipelining, chunked bodies, large uploads
 * and WebSocket upgrades pass untouched. A service answers to `ID.DOMAIN` (`--domain`).
 *
 * Clients it cannot route get a small response that names no other service: 400 or 408 for no
 * complete request head, 404 for an unknown host, 502 when the service is offline or cannot be
 * reached, 403 when the access rules refuse the client, 401 (with a Basic challenge) when the
 * service names its visitors and the request is none of them.
 */

import { closeQuietly } from "../net.ts";
import { acceptEach, listenTcp } from "../listen.ts";
import { type HostPort } from "../address.ts";
import type { Arrival, Front, FrontContext, PublishRequest, Refusal } from "./front.ts";
import { HostNames } from "./host_names.ts";
import { refuseHttp, routeHttp } from "./http_route.ts";

/** How the HTTP front is set up. */
export interface HttpFrontOptions {
  /** Where it listens. */
  listen: HostPort;
  /** The domain whose subdomains name services: `web.DOMAIN` reaches service web. */
  domain: string;
  /** Time a client has to send its request head (default: lib/http_head.ts'). */
  headTimeoutMs?: number;
}

/** Services by host name on one shared port. */
export class HttpFront implements Front {
  readonly name = "http";
  /** Where it listens, with the actual port when 0 was asked for. */
  readonly address: HostPort;
  #listener: Deno.TcpListener;
  #names: HostNames;

  private constructor(
    listener: Deno.TcpListener,
    options: HttpFrontOptions,
    context: FrontContext,
  ) {
    this.#listener = listener;
    this.#names = new HostNames({ domain: options.domain, kind: "http" });
    this.address = { hostname: options.listen.hostname, port: listener.addr.port };
    acceptEach(listener, async (conn) => {
      const client = await context.clientOf(conn);
      if (client) routeHttp(conn, () => client, this.#names, this, context, options.headTimeoutMs);
    }, context.onAcceptError);
  }

  /** Listens on `options.listen`; throws naming the address if it cannot. */
  static open(options: HttpFrontOptions, context: FrontContext): HttpFront {
    return new HttpFront(listenTcp(options.listen, "HTTP clients"), options, context);
  }

  publish(request: PublishRequest): { address: string } | { reason: string } | undefined {
    const named = this.#names.publish(request);
    if (!named || "reason" in named) return named;
    const port = this.address.port === 80 ? "" : `:${this.address.port}`;
    return { address: `http://${named.host}${port}/` };
  }

  withdraw(service: string): void {
    this.#names.withdraw(service);
  }

  refuse(arrival: Arrival, why: Refusal): void {
    refuseHttp(arrival, why);
  }

  close(): void {
    closeQuietly(this.#listener);
  }
}
