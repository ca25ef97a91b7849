/**
 * The relay's agent port: one listener, on whatever transport, for agents' control and data
 * channels (C1, C3 in docs/flow.md), as porthole frames or inside WebSocket upgrades. It caps the
 * connections still in their handshake, reads the first frame within the handshake deadline, checks its protocol version, and hands a `hello` to
 * the control side and a `data` frame to the data side. Whatever fails is answered with an error
 * frame where possible, closed, and logged at most once a minute per address and kind.
 */

import type { OpenConnections } from "../drain.ts";
import { createLogger } from "../log.ts";
import {
  closeQuietly,
  type Conn,
  deadline,
  describeError,
  type Listener,
  withPeer,
  writeAll,
} from "../net.ts";
import { acceptEach } from "../listen.ts";
import { formatAddr, type HostPort } from "../address.ts";
import { type AgentMessageOf, PROTOCOL_VERSION, ProtocolError } from "../protocol.ts";
import { decodeAgentMessage, encodeFrame } from "../message_codec.ts";
import type { FrameReader } from "../frames.ts";
import { LogThrottle } from "../throttle.ts";
import type { AgentTransport } from "../transport/transport.ts";
import { openChannel } from "../transport/websocket.ts";
import type { Limits } from "./config.ts";

/** Why an agent connection's handshake failed, as the metrics count it. */
export type HandshakeFailure =
  | "protocol"
  | "version"
  | "authentication"
  | "connection id"
  | "limit"
  | "busy"
  | "failed";

/** What the agent port hands a connection to, once its first frame says what it is. */
export interface AgentPortHandlers {
  /** A control channel's `hello`; `authenticated` ends its count as unauthenticated. */
  control(
    conn: Conn,
    reader: FrameReader,
    hello: AgentMessageOf<"hello">,
    authenticated: () => void,
  ): Promise<void>;
  /** A data channel's `data` frame; `authenticated` as for control. */
  data(
    conn: Conn,
    reader: FrameReader,
    message: AgentMessageOf<"data">,
    authenticated: () => void,
  ): Promise<void>;
  /** A spare data channel's `spare` frame; `authenticated` as for control. */
  spare(
    conn: Conn,
    reader: FrameReader,
    message: AgentMessageOf<"spare">,
    authenticated: () => void,
  ): void;
}

/** How the agent port is opened. */
export interface AgentPortOptions {
  transport: AgentTransport;
  address: HostPort;
  /** The path agents' WebSocket upgrades must ask for (lib/transport/websocket.ts). */
  webSocketPath: string;
  /** The agent that really opened a connection a front handed on over loopback, if one did. */
  agentOf?: (conn: Conn) => Deno.NetAddr | undefined;
  /** The limits in force (they change on reload). */
  limits: () => Limits;
  open: OpenConnections;
  /** Reports a failure to accept; accepting goes on. */
  onAcceptError: (error: Error) => void;
}

const log = createLogger("relay");

/** The agent port, listening. */
export class AgentPort {
  /** Where agents dial, with the actual port when 0 was asked for. */
  readonly address: HostPort;
  #listener: Listener;
  #options: AgentPortOptions;
  #handlers: AgentPortHandlers;
  #unauthenticated = 0;
  #throttle = new LogThrottle();
  /** Agent connections whose handshake failed so far, by why. */
  readonly failedHandshakes = new Map<HandshakeFailure, number>();

  private constructor(listener: Listener, options: AgentPortOptions, handlers: AgentPortHandlers) {
    this.#listener = listener;
    this.#options = options;
    this.#handlers = handlers;
    this.address = {
      hostname: options.address.hostname,
      port: (listener.addr as Deno.NetAddr).port,
    };
    acceptEach(listener, (conn) => this.#accept(conn), options.onAcceptError);
  }

  /** Listens on `options.address`; throws naming the address if it cannot. */
  static async open(options: AgentPortOptions, handlers: AgentPortHandlers): Promise<AgentPort> {
    return new AgentPort(await options.transport.listen(options.address), options, handlers);
  }

  /** Connections still in their handshake. */
  get unauthenticated(): number {
    return this.#unauthenticated;
  }

  /** Stops accepting; connections already accepted stay. */
  close(): void {
    closeQuietly(this.#listener);
  }

  /** Sends an error frame, logs why, counts it under `reason`, and releases the connection. */
  refuse(conn: Conn, why: string, reason: HandshakeFailure): void {
    this.#count(reason);
    this.#warn(conn, why.slice(0, 40), (from) => `refused agent connection from ${from}: ${why}`);
    // Then the end of what the relay sends (over TLS, close_notify), so the agent reads the
    // error as the last word rather than an abrupt end.
    writeAll(conn, encodeFrame({ type: "error", message: why }))
      .then(() => conn.closeWrite())
      .catch(() => {})
      .finally(() => this.#options.open.release(conn));
  }

  #count(reason: HandshakeFailure): void {
    this.failedHandshakes.set(reason, (this.failedHandshakes.get(reason) ?? 0) + 1);
  }

  /** A throttled warning about a connection; `message` gets its address. */
  #warn(conn: Conn, kind: string, message: (from: string) => string): void {
    const { hostname } = conn.remoteAddr as Deno.NetAddr;
    this.#throttle.pass(`${hostname} ${kind}`, (note) => {
      log.warn(message(formatAddr(conn.remoteAddr)) + note);
    });
  }

  /** Counts the connection as unauthenticated until its handshake ends, within the limit. */
  #accept(conn: Conn): void {
    const { maxUnauthenticated } = this.#options.limits();
    if (this.#unauthenticated >= maxUnauthenticated) {
      closeQuietly(conn);
      this.#count("busy");
      this.#warn(
        conn,
        "busy",
        (from) =>
          `refused agent connection from ${from}: ${maxUnauthenticated} ` +
          "connections are already in their handshake (limits.max_unauthenticated)",
      );
      return;
    }
    this.#unauthenticated++;
    let counted = true;
    const authenticated = () => {
      if (counted) this.#unauthenticated--;
      counted = false;
    };
    this.#options.open.track(conn, authenticated);
    this.#open(conn, authenticated).catch((error) => {
      const why = describeError(error) + this.#options.transport.hint(error);
      this.#count("failed");
      this.#warn(conn, "failed", (from) => `agent connection from ${from}: ${why}`);
      this.#options.open.release(conn);
    });
  }

  /** Opens the channel (a WebSocket's, if it asks for one) within the handshake deadline. */
  async #open(raw: Conn, authenticated: () => void): Promise<void> {
    const { open, limits, webSocketPath } = this.#options;
    const until = Date.now() + limits().handshakeTimeoutMs;
    const channel = await deadline(
      openChannel(raw, webSocketPath),
      until - Date.now(),
      raw,
      "the opening",
    );
    if (!channel) return open.release(raw);
    const agent = this.#options.agentOf?.(raw);
    if (agent) channel.conn = withPeer(channel.conn, agent);
    if (channel.conn !== raw) open.replace(raw, channel.conn);
    const timeoutMs = Math.max(1, until - Date.now());
    await this.#dispatch(channel.conn, channel.reader, authenticated, timeoutMs).catch((error) => {
      open.release(channel.conn);
      throw error;
    });
  }

  /** First frame decides: `hello` opens a control channel, `data` a data channel, `spare` a spare. */
  async #dispatch(
    conn: Conn,
    reader: FrameReader,
    authenticated: () => void,
    timeoutMs: number,
  ): Promise<void> {
    let message;
    try {
      const first = await deadline(reader.next(), timeoutMs, conn, "the opening frame");
      if (first === null) return this.#options.open.release(conn);
      message = decodeAgentMessage(first);
    } catch (error) {
      if (error instanceof ProtocolError) return this.refuse(conn, error.message, "protocol");
      throw error;
    }
    if (message.type !== "hello" && message.type !== "data" && message.type !== "spare") {
      return this.refuse(
        conn,
        `expected "hello", "data" or "spare" first, got "${message.type}"`,
        "protocol",
      );
    }
    if (message.version !== PROTOCOL_VERSION) {
      return this.refuse(
        conn,
        `protocol version ${message.version} is not supported; this relay speaks ` +
          `${PROTOCOL_VERSION}: run the same porthole version on agent and relay`,
        "version",
      );
    }
    if (message.type === "hello") {
      await this.#handlers.control(conn, reader, message, authenticated);
    } else if (message.type === "data") {
      await this.#handlers.data(conn, reader, message, authenticated);
    } else {
      this.#handlers.spare(conn, reader, message, authenticated);
    }
  }
}
