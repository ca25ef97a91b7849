/**
 * The relay's service table: which agent session serves each service id, and the public
 * listener clients dial for it. Pinned services (`--expose`) listen from the relay's start, so a
 * client arriving while their agent is away is told so (and closed) at once; other services get
 * a port from the range when registered, and release it when their agent goes. A service keeps
 * the port it was given for the relay's lifetime, so an agent that reconnects finds it again.
 */

import { acceptEach, closeQuietly, formatHostPort, type HostPort, type PortRange } from "../net.ts";

/** Called for every client accepted on a service's public listener. */
export type ClientHandler = (service: string, conn: Deno.TcpConn) => void;

interface ServiceEntry<Owner> {
  owner?: Owner;
  listener?: Deno.TcpListener;
  address?: HostPort;
}

/** Service id → owner and public listener. `Owner` is the relay's session type. */
export class ServiceTable<Owner> {
  #entries = new Map<string, ServiceEntry<Owner>>();
  #pinned: Map<string, HostPort>;
  #listenHost: string;
  #range?: PortRange;
  #cursor = 0; // offset into the range where the next search starts
  #onClient: ClientHandler;
  #onAcceptError: (error: Error) => void;

  constructor(options: {
    pinned: Map<string, HostPort>;
    listenHost: string;
    portRange?: PortRange;
    onClient: ClientHandler;
    onAcceptError: (error: Error) => void;
  }) {
    this.#pinned = options.pinned;
    this.#listenHost = options.listenHost;
    this.#range = options.portRange;
    this.#onClient = options.onClient;
    this.#onAcceptError = options.onAcceptError;
  }

  /** Binds every pinned service's listener; throws naming the service whose address is taken. */
  openPinned(): void {
    for (const [id, address] of this.#pinned) {
      try {
        this.#entries.set(id, { listener: this.#listen(id, address), address });
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

  /** The owner serving `id`, if one is online. */
  ownerOf(id: string): Owner | undefined {
    return this.#entries.get(id)?.owner;
  }

  /** The public address of every pinned or registered service. */
  addresses(): Map<string, HostPort> {
    const result = new Map<string, HostPort>();
    for (const [id, entry] of this.#entries) if (entry.address) result.set(id, entry.address);
    return result;
  }

  /**
   * Makes `owner` the server of `id` and returns the public address, or the reason it cannot:
   * the id is already online, or no address can be given to it. `port` asks for a public port
   * (whether the owner may have it is the caller's to check).
   */
  register(
    id: string,
    owner: Owner,
    describeOwner: (owner: Owner) => string,
    port?: number,
  ): { address: HostPort } | { reason: string } {
    const entry = this.#entries.get(id) ?? {};
    if (entry.owner !== undefined && entry.owner !== owner) {
      return {
        reason: `service id ${id} is already online from ${describeOwner(entry.owner)}; ` +
          "choose another id or stop the other agent",
      };
    }
    const pinned = this.#pinned.get(id);
    if (pinned && port !== undefined && port !== pinned.port) {
      return { reason: `service ${id} is pinned to port ${pinned.port} by the relay's --expose` };
    }
    if (!pinned && port !== undefined && entry.address?.port !== port) {
      if (entry.listener) closeQuietly(entry.listener);
      entry.listener = undefined;
      entry.address = undefined;
    }
    if (!entry.listener) {
      const bound = port === undefined || pinned
        ? this.#bindFromRange(id, entry.address?.port)
        : this.#bindExactly(id, port);
      if ("reason" in bound) return bound;
      entry.listener = bound.listener;
      entry.address = bound.address;
    }
    entry.owner = owner;
    this.#entries.set(id, entry);
    return { address: entry.address! };
  }

  /** Takes `id` offline if `owner` serves it; a port from the range is released. */
  unregister(id: string, owner: Owner): void {
    const entry = this.#entries.get(id);
    if (!entry || entry.owner !== owner) return;
    entry.owner = undefined;
    if (!this.#pinned.has(id) && entry.listener) {
      closeQuietly(entry.listener);
      entry.listener = undefined;
    }
  }

  /** Closes every public listener. */
  close(): void {
    for (const entry of this.#entries.values()) {
      if (entry.listener) closeQuietly(entry.listener);
      entry.listener = undefined;
    }
  }

  #bindFromRange(
    id: string,
    previousPort: number | undefined,
  ): { listener: Deno.TcpListener; address: HostPort } | { reason: string } {
    const range = this.#range;
    if (!range) {
      return {
        reason: `service ${id} is not pinned with --expose and the relay has no --port-range`,
      };
    }
    // Start where the last search ended, so registering n services costs O(n) binds, not O(n²).
    const size = range.last - range.first + 1;
    const ports = previousPort === undefined ? [] : [previousPort];
    for (let i = 0; i < size; i++) ports.push(range.first + (this.#cursor + i) % size);
    for (const port of ports) {
      const address = { hostname: this.#listenHost, port };
      try {
        const listener = this.#listen(id, address);
        this.#cursor = (port - range.first + 1) % size;
        return { listener, address };
      } catch {
        // in use: try the next port
      }
    }
    return {
      reason: `no free port left in ${range.first}-${range.last} for service ${id}`,
    };
  }

  #bindExactly(
    id: string,
    port: number,
  ): { listener: Deno.TcpListener; address: HostPort } | { reason: string } {
    const address = { hostname: this.#listenHost, port };
    try {
      return { listener: this.#listen(id, address), address };
    } catch (error) {
      return { reason: `cannot listen on ${formatHostPort(address)}: ${(error as Error).message}` };
    }
  }

  #listen(id: string, address: HostPort): Deno.TcpListener {
    const listener = Deno.listen({ hostname: address.hostname, port: address.port });
    acceptEach(listener, (conn) => this.#onClient(id, conn), this.#onAcceptError);
    return listener;
  }
}
