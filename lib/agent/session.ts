/**
 * One control channel of the agent (C1 in docs/flow.md), from dialing the relay to its end: the
 * handshake (S1–S2), the services' registration (S3–S4), and the relay's requests for clients
 * (S7), each served by lib/agent/serve.ts.
 */

import { secretKey } from "../auth.ts";
import { ControlChannel } from "../channel.ts";
import type { OpenConnections } from "../drain.ts";
import { greetRelay, HandshakeRefusedError } from "../handshake.ts";
import { createLogger } from "../log.ts";
import { type Conn, deadline, describeError } from "../net.ts";
import { formatHostPort, isUnspecified, parseHostPort } from "../address.ts";
import {
  type AgentMessage,
  HANDSHAKE_TIMEOUT_MS,
  ProtocolError,
  type RelayMessage,
} from "../protocol.ts";
import { decodeRelayMessage } from "../message_codec.ts";
import { type RelayDialer, RouteError, UntrustedRelayError } from "../transport/transport.ts";
import { type AgentService, DIAL_TIMEOUT_MS, serveClient, type ServeContext } from "./serve.ts";
import { type SpareLimits, SparePool } from "./spares.ts";
import { serveEarly } from "./early.ts";
import { EarlySinks } from "../early.ts";
import type { LiveConnections } from "../admin/live.ts";

/** A problem that retrying cannot fix (wrong secret, incompatible relay): the agent stops. */
export class AgentFatalError extends Error {
  override name = "AgentFatalError";
  /**
   * True when the problem may be the path's rather than the relay's (a certificate not trusted,
   * nonsense instead of frames: something in between), so another path may still work.
   */
  readonly ofPath: boolean;

  constructor(message: string, ofPath = false) {
    super(message);
    this.ofPath = ofPath;
  }
}

/** What a session is run with. */
export interface SessionOptions {
  /** Opens the control channel, and the data channels of its clients. */
  dialer: RelayDialer;
  /** The path the dialer takes, for logs ("TLS, direct"). */
  path: string;
  secret: string;
  agentId: string;
  services: ReadonlyMap<string, AgentService>;
  open: OpenConnections;
  idleTimeoutMs?: number;
  /** Spare data channels to keep (lib/agent/spares.ts); none when the maximum is 0. */
  spares: SpareLimits;
  /** Early-data window to ask the relay for (lib/agent/early.ts); 0 for none. */
  earlyWindow: number;
  /** Where spliced connections are counted, for the admin API. */
  live: LiveConnections;
  /** Each service the relay brought online, with its public addresses, while the session is up. */
  published: Map<string, readonly string[]>;
  /** Called once the session can publish and withdraw services, and with undefined at its end. */
  onRegistrar?(registrar: Registrar | undefined): void;
  /** Aborts to end the session (the agent is shutting down). */
  signal: AbortSignal;
  /** Called with true once the session is established, and with false when it ends. */
  onConnected(connected: boolean): void;
  /** Called with the session's spare data channels once it has them, and with undefined at its end. */
  onSpares?(spares: { readonly idle: number } | undefined): void;
  /**
   * Watches, once the session is established, for a reason to end it (a better path answering);
   * `signal` aborts when the session ends.
   */
  endWhen?(signal: AbortSignal): Promise<string | undefined>;
  /** Called once the session is established, before `onConnected`. */
  onEstablished?(): void;
}

/** How a session ended: why, and whether it had been established (which resets the backoff). */
export interface SessionEnd {
  reason: string;
  established: boolean;
  /** True when the route could not open a connection at all (the relay or proxy unreachable). */
  unreachable?: boolean;
}

type Channel = ControlChannel<RelayMessage>;

/** Publishes and withdraws services over a session's control channel (S3). */
export interface Registrar {
  register(id: string, service: AgentService): void;
  unregister(id: string): void;
  /** Says whether service `id` passes its health checks now (and why not). */
  health(id: string, passing: boolean, reason?: string): void;
}

/** The `register` message of service `id`. */
function registration(id: string, { kind, port, hosts }: AgentService): AgentMessage {
  return {
    type: "register",
    service: id,
    ...(kind === undefined || kind === "tcp" ? {} : { kind }),
    ...(port === undefined ? {} : { port }),
    ...(hosts?.length ? { hosts } : {}),
  };
}

const log = createLogger("agent");

/** One control channel, from dialing to its end; resolves with why it ended. */
export async function runSession(options: SessionOptions): Promise<SessionEnd> {
  const relayName = formatHostPort(options.dialer.relay);
  let conn: Conn;
  try {
    conn = await options.dialer.dial(DIAL_TIMEOUT_MS);
  } catch (error) {
    if (error instanceof UntrustedRelayError || error instanceof ProtocolError) {
      throw new AgentFatalError(error.message, true);
    }
    return {
      reason: `cannot reach the relay at ${relayName}: ${describeError(error)}`,
      established: false,
      unreachable: error instanceof RouteError,
    };
  }
  const channel: Channel = new ControlChannel(conn, decodeRelayMessage);
  const stop = () => channel.close("the agent is shutting down");
  options.signal.addEventListener("abort", stop);
  let established = false;
  let spares: SparePool | undefined;
  let endedBecause: string | undefined;
  const watching = new AbortController();
  const earlySinks = new EarlySinks();
  try {
    const welcome = await deadline(
      greetRelay(
        channel,
        options.agentId,
        secretKey(options.secret),
        relayName,
        options.earlyWindow,
      ),
      HANDSHAKE_TIMEOUT_MS,
      conn,
      `the handshake with the relay at ${relayName}`,
    );
    established = true;
    options.endWhen?.(watching.signal).then((reason) => {
      if (!reason) return;
      endedBecause = reason;
      channel.close(reason);
    });
    options.onEstablished?.();
    options.onConnected(true);
    log.info(
      `connected to the relay at ${relayName} (${options.path}) as agent ${options.agentId}`,
    );
    channel.startHeartbeat(
      welcome.heartbeatMs,
      (silentMs) =>
        log.warn(`the relay at ${relayName} has been silent for ${Math.round(silentMs)} ms`),
    );
    const registrar: Registrar = {
      register: (id, service) => channel.send(registration(id, service)),
      unregister: (id) => channel.send({ type: "unregister", service: id }),
      health: (id, passing, reason) =>
        channel.send({ type: "health", service: id, passing, ...(reason ? { reason } : {}) }),
    };
    for (const [id, service] of options.services) registrar.register(id, service);
    options.onRegistrar?.(registrar);
    const context: ServeContext = {
      ...options,
      session: welcome.session,
      refuse: (conn, reason) => channel.send({ type: "refuse", conn, reason }),
      early: welcome.early
        ? {
          window: Math.min(welcome.early, options.earlyWindow),
          sinks: earlySinks,
          send: (conn, bytes) => channel.send({ type: "early", conn, bytes }),
        }
        : undefined,
    };
    if (welcome.spares && options.spares.max > 0) {
      spares = new SparePool(context, options.spares, welcome.spares);
      options.onSpares?.(spares);
    }
    for (let message; (message = await channel.receive()) !== null;) {
      if (message.type === "connect") spares?.short();
      handle(message, context, options.published);
    }
    const reason = endedBecause ?? `the relay at ${relayName} closed the control channel`;
    return { reason, established };
  } catch (error) {
    if (error instanceof HandshakeRefusedError) throw new AgentFatalError(error.message);
    if (error instanceof ProtocolError) {
      channel.send({ type: "error", message: error.message });
      // Nonsense before the handshake completes is not a glitch: the address or setup is wrong.
      if (!established) {
        throw new AgentFatalError(`the relay at ${relayName}: ${error.message}`, true);
      }
    }
    return { reason: `control channel to ${relayName} lost: ${describeError(error)}`, established };
  } finally {
    watching.abort();
    earlySinks.dropOwner("", new Error("the control channel ended"));
    options.published.clear();
    options.onRegistrar?.(undefined);
    spares?.close();
    options.onSpares?.(undefined);
    if (established) options.onConnected(false);
    options.signal.removeEventListener("abort", stop);
    channel.close();
  }
}

function handle(
  message: RelayMessage,
  context: ServeContext,
  published: Map<string, readonly string[]>,
): void {
  switch (message.type) {
    case "registered": {
      published.set(message.service, [message.address, ...message.also ?? []]);
      const target = formatHostPort(context.services.get(message.service)!.target);
      const at = parseHostPort(message.address);
      if (isUnspecified(at.hostname)) at.hostname = context.dialer.relay.hostname;
      log.info(`service ${message.service} (${target}) is reachable at ${formatHostPort(at)}`);
      for (const address of message.also ?? []) {
        log.info(`service ${message.service} is also reachable at ${address}`);
      }
      return;
    }
    case "refused":
      published.delete(message.service);
      log.error(`service ${message.service} was refused by the relay: ${message.reason}`);
      return;
    case "connect":
      if (context.early && message.early) serveEarly(message, context, context.early);
      else serveClient(message, context);
      return;
    case "early":
      if (context.early?.sinks.push(message.conn, message.bytes) === "overrun") {
        log.warn(`connection ${message.conn}: the relay sent more early bytes than the window`);
        context.early.sinks.close(message.conn);
      }
      return;
    case "error":
      log.error(`the relay reports: ${message.message}`);
      return;
    default:
      throw new ProtocolError(`unexpected "${message.type}" on the control channel`);
  }
}
