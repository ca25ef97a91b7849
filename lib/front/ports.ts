/**
 * The port front: each service on a public port of its own, the client naming the service by the
 * port it dials. Pinned services (`--expose`) listen from the relay's start, so a client arriving
 * while their agent is away is told so (and closed) at once; other services get a port from the
 * range (or the one their agent asks for) when they come online, and release it when they go. A
 * service keeps the port it was given for the relay's lifetime, so an agent that reconnects finds
 * it again.
 */

import { closeQuietly } from "../net.ts";
import { acceptEach } from "../listen.ts";
import { formatHostPort, type HostPort, type PortRange } from "../address.ts";
import type { Arrival, Front, FrontContext, PublishRequest } from "./front.ts";

/** How the port front is set up. */
export interface PortFrontOptions {
  /** Service id → the public address it is pinned to (`--expose`). */
  pinned: Map<string, HostPort>;
  /** The host the range's ports are bound on. */
  listenHost: string;
  /** Ports for services that are not pinned (`--port-range`). */
  portRange?: PortRange;
}

type Bound = { listener: Deno.TcpListener; address: HostPort } | { reason: string };

const NOTHING_READ = new Uint8Array(0);

/** Public ports, one per service. */
export class PortFront implements Front {
  readonly name = "ports";
  #listeners = new Map<string, Deno.TcpListener>();
  /** The port each service was last given, kept while the relay runs. */
  #addresses = new Map<string, HostPort>();
  #options: PortFrontOptions;
  #context: FrontContext;
  #cursor = 0; // offset into the range where the next search starts

  /** Binds every pinned service's port; throws naming the service whose address is taken. */
  constructor(options: PortFrontOptions, context: FrontContext) {
    this.#options = options;
    this.#context = context;
    for (const [id, address] of options.pinned) {
      try {
        this.#listeners.set(id, this.#listen(id, address));
        this.#addresses.set(id, address);
      } catch (error) {
        this.close();
        throw new Error(
          `cannot listen for service ${id} on ${formatHostPort(address)}: ${
            (error as Error).message
          }`,
        );
      }
    }
  }

  /** The public address of every pinned service. */
  get pinned(): Map<string, HostPort> {
    return this.#options.pinned;
  }

  publish({ service, port }: PublishRequest): { address: string } | { reason: string } {
    const pinned = this.#options.pinned.get(service);
    if (pinned) {
      return port === undefined || port === pinned.port
        ? { address: formatHostPort(pinned) }
        : { reason: `service ${service} is pinned to port ${pinned.port} by the relay's --expose` };
    }
    const previous = this.#addresses.get(service);
    if (port !== undefined && previous?.port !== port) this.withdraw(service);
    if (!this.#listeners.has(service)) {
      const bound = port === undefined
        ? this.#bindFromRange(service, previous?.port)
        : this.#bind(service, port);
      if ("reason" in bound) return bound;
      this.#listeners.set(service, bound.listener);
      this.#addresses.set(service, bound.address);
    }
    return { address: formatHostPort(this.#addresses.get(service)!) };
  }

  withdraw(service: string): void {
    if (this.#options.pinned.has(service)) return;
    const listener = this.#listeners.get(service);
    if (listener) closeQuietly(listener);
    this.#listeners.delete(service);
  }

  refuse(arrival: Arrival): void {
    closeQuietly(arrival.conn);
  }

  close(): void {
    for (const listener of this.#listeners.values()) closeQuietly(listener);
    this.#listeners.clear();
  }

  #bindFromRange(service: string, previousPort: number | undefined): Bound {
    const range = this.#options.portRange;
    if (!range) {
      return {
        reason: `service ${service} is not pinned with --expose and the relay has no --port-range`,
      };
    }
    // Start where the last search ended, so publishing n services costs O(n) binds, not O(n²).
    const size = range.last - range.first + 1;
    const ports = previousPort === undefined ? [] : [previousPort];
    for (let i = 0; i < size; i++) ports.push(range.first + (this.#cursor + i) % size);
    for (const port of ports) {
      const bound = this.#bind(service, port);
      if ("reason" in bound) continue; // in use: try the next port
      this.#cursor = (port - range.first + 1) % size;
      return bound;
    }
    return { reason: `no free port left in ${range.first}-${range.last} for service ${service}` };
  }

  #bind(service: string, port: number): Bound {
    const address = { hostname: this.#options.listenHost, port };
    try {
      return { listener: this.#listen(service, address), address };
    } catch (error) {
      return { reason: `cannot listen on ${formatHostPort(address)}: ${(error as Error).message}` };
    }
  }

  #listen(service: string, address: HostPort): Deno.TcpListener {
    const listener = Deno.listen({ hostname: address.hostname, port: address.port });
    acceptEach(listener, (conn) => this.#arrive(service, conn), this.#context.onAcceptError);
    return listener;
  }

  async #arrive(service: string, conn: Deno.TcpConn): Promise<void> {
    const client = await this.#context.clientOf(conn);
    if (client) this.#context.arrive({ service, conn, client, head: NOTHING_READ, front: this });
  }
}
