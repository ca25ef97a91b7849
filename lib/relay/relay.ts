/**
 * The relay: accepts agents' control and data channels on one port, publishes their services on
 * public listeners, and joins each client to a data channel opened for it (S2, S4, S6, S7, S11).
 *
 * @example
 * const relay = startRelay({ listen: { hostname: "127.0.0.1", port: 0 }, secret, portRange });
 * // ... later
 * relay.close();
 */

import { computeProof, randomToken, sameToken } from "../auth.ts";
import { ControlChannel } from "../channel.ts";
import { createLogger } from "../log.ts";
import {
  acceptEach,
  closeQuietly,
  deadline,
  describeError,
  formatAddr,
  formatHostPort,
  type HostPort,
  writeAll,
} from "../net.ts";
import {
  type AgentMessage,
  decodeAgentMessage,
  encodeFrame,
  FrameReader,
  HANDSHAKE_TIMEOUT_MS,
  HEARTBEAT_INTERVAL_MS,
  PROTOCOL_VERSION,
  ProtocolError,
} from "../protocol.ts";
import { splice } from "../splice.ts";
import { type CertifiedKey, listenForAgents } from "../tls.ts";
import { PendingTable } from "./pending.ts";
import { type PortRange, ServiceTable } from "./services.ts";

/** Default time a client is held while its agent opens the data channel; the id then expires. */
export const CONNECT_TIMEOUT_MS = 10_000;
/** Clients one agent session may have waiting for data channels at once; more are refused. */
export const MAX_PENDING_PER_AGENT = 1_000;

/** What a relay is started with. */
export interface RelayOptions {
  /** Where agents dial, for both control and data channels. */
  listen: HostPort;
  /** The shared secret agents must prove they hold. */
  secret: string;
  /** Certificate for the agent port; without one, agents connect over plain TCP. */
  tls?: CertifiedKey;
  /** Service ids pinned to public addresses (`--expose`). */
  expose?: Map<string, HostPort>;
  /** Ports for services that are not pinned (`--port-range`). */
  portRange?: PortRange;
  /** How long a client waits for its data channel. */
  connectTimeoutMs?: number;
  /** Heartbeat interval on control channels. */
  heartbeatMs?: number;
}

/** A running relay. */
export interface Relay {
  /** The address agents dial (with the actual port when 0 was asked for). */
  readonly address: HostPort;
  /** Counts of what the relay holds now, for tests and operators. */
  stats(): { agents: number; pending: number; connections: number };
  /** Stops listening and closes every connection. */
  close(): void;
}

interface AgentSession {
  /** The unguessable session id that binds this agent's data channels. */
  id: string;
  agentId: string;
  channel: ControlChannel<AgentMessage>;
  services: Set<string>;
}

const log = createLogger("relay");

/** Starts a relay; throws if its agent port or a pinned service address cannot be bound. */
export function startRelay(options: RelayOptions): Relay {
  const connectTimeoutMs = options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
  const heartbeatMs = options.heartbeatMs ?? HEARTBEAT_INTERVAL_MS;
  const sessions = new Map<string, AgentSession>(); // by agent id
  const pending = new PendingTable();
  const open = new Set<Deno.Conn>(); // every client, control and data connection
  const onAcceptError = (error: Error) =>
    log.error(`cannot accept connections: ${error.message} (raise the open-file limit?)`);
  const services = new ServiceTable<AgentSession>({
    pinned: options.expose ?? new Map(),
    listenHost: options.listen.hostname,
    portRange: options.portRange,
    onClient: holdClient,
    onAcceptError,
  });
  services.openPinned();
  let listener: Deno.Listener;
  try {
    listener = listenForAgents(options.listen, options.tls);
  } catch (error) {
    services.close();
    throw new Error(
      `cannot listen for agents on ${formatHostPort(options.listen)}: ${(error as Error).message}`,
    );
  }
  const address = {
    hostname: options.listen.hostname,
    port: (listener.addr as Deno.NetAddr).port,
  };
  acceptEach(listener, (conn) => {
    track(conn);
    handleAgentConnection(conn).catch((error) => {
      const why = describeError(error);
      const hint = /corrupt message|InvalidContentType/.test(why) && options.tls
        ? " (not TLS: is the agent running with --insecure? use TLS on both sides, or --insecure on both)"
        : "";
      log.warn(`agent connection from ${formatAddr(conn.remoteAddr)}: ${why}${hint}`);
      closeQuietly(conn);
    });
  }, onAcceptError);
  log.info(`listening for agents on ${formatHostPort(address)}`);
  for (const [id, at] of services.addresses()) {
    log.info(`service ${id} pinned to ${formatHostPort(at)}`);
  }

  function track(conn: Deno.Conn): void {
    open.add(conn);
  }
  function release(conn: Deno.Conn): void {
    open.delete(conn);
    closeQuietly(conn);
  }

  /** First frame decides: `hello` opens a control channel, `data` a data channel. */
  async function handleAgentConnection(conn: Deno.Conn): Promise<void> {
    const reader = new FrameReader(conn);
    let message: AgentMessage;
    try {
      const first = await deadline(reader.next(), HANDSHAKE_TIMEOUT_MS, conn, "the opening frame");
      if (first === null) return release(conn);
      message = decodeAgentMessage(first);
    } catch (error) {
      if (error instanceof ProtocolError) return refuse(conn, error.message);
      throw error;
    }
    if (message.type === "hello") await runControl(conn, reader, message);
    else if (message.type === "data") await acceptDataChannel(conn, reader, message);
    else refuse(conn, `expected "hello" or "data" first, got "${message.type}"`);
  }

  /** Sends an error frame, logs why, and closes. */
  function refuse(conn: Deno.Conn, why: string): void {
    log.warn(`refused agent connection from ${formatAddr(conn.remoteAddr)}: ${why}`);
    writeAll(conn, encodeFrame({ type: "error", message: why }))
      .catch(() => {})
      .finally(() => release(conn));
  }

  function versionProblem(version: number): string | undefined {
    if (version === PROTOCOL_VERSION) return undefined;
    return `protocol version ${version} is not supported; this relay speaks ${PROTOCOL_VERSION}: ` +
      "run the same porthole version on agent and relay";
  }

  /** S1–S2: authenticate, then S3–S4 and S7–S8 until the channel ends. */
  async function runControl(
    conn: Deno.Conn,
    reader: FrameReader,
    hello: Extract<AgentMessage, { type: "hello" }>,
  ): Promise<void> {
    const badVersion = versionProblem(hello.version);
    if (badVersion) return refuse(conn, badVersion);
    const channel = new ControlChannel(conn, decodeAgentMessage, reader);
    const relayNonce = randomToken();
    channel.send({
      type: "challenge",
      nonce: relayNonce,
      proof: computeProof(options.secret, "relay", hello.agent, hello.nonce, relayNonce),
    });
    const auth = await deadline(
      channel.receive(),
      HANDSHAKE_TIMEOUT_MS,
      conn,
      "authentication",
    );
    if (auth === null) return release(conn);
    if (auth.type !== "auth") return refuse(conn, `expected "auth", got "${auth.type}"`);
    const expected = computeProof(
      options.secret,
      "agent",
      hello.agent,
      hello.nonce,
      relayNonce,
    );
    if (!sameToken(expected, auth.proof)) {
      return refuse(
        conn,
        `agent ${hello.agent} failed authentication: wrong secret ` +
          "(give agent and relay the same --secret-file or PORTHOLE_SECRET)",
      );
    }
    const session: AgentSession = {
      id: randomToken(),
      agentId: hello.agent,
      channel,
      services: new Set(),
    };
    const stale = sessions.get(hello.agent);
    if (stale) {
      log.warn(`agent ${hello.agent} connected again; closing its previous session`);
      endSession(stale);
    }
    sessions.set(hello.agent, session);
    channel.send({ type: "welcome", session: session.id, heartbeatMs });
    channel.startHeartbeat(heartbeatMs, (silentMs) =>
      log.warn(
        `agent ${hello.agent} silent for ${Math.round(silentMs)} ms; dropping its session`,
      ));
    log.info(`agent ${hello.agent} connected from ${formatAddr(conn.remoteAddr)}`);
    try {
      for (let message; (message = await channel.receive()) !== null;) {
        handleControlMessage(session, message);
      }
      log.info(`agent ${hello.agent} disconnected`);
    } catch (error) {
      const why = describeError(error);
      if (error instanceof ProtocolError) channel.send({ type: "error", message: why });
      log.warn(`agent ${hello.agent}: control channel ended: ${why}`);
    } finally {
      endSession(session);
    }
  }

  function handleControlMessage(session: AgentSession, message: AgentMessage): void {
    const agent = session.agentId;
    switch (message.type) {
      case "register": {
        const result = services.register(
          message.service,
          session,
          (owner) => `agent ${owner.agentId}`,
        );
        if ("reason" in result) {
          log.warn(`agent ${agent}: service ${message.service} refused: ${result.reason}`);
          session.channel.send({
            type: "refused",
            service: message.service,
            reason: result.reason,
          });
          return;
        }
        session.services.add(message.service);
        const at = formatHostPort(result.address);
        log.info(`agent ${agent}: service ${message.service} online at ${at}`);
        session.channel.send({ type: "registered", service: message.service, address: at });
        return;
      }
      case "unregister":
        services.unregister(message.service, session);
        session.services.delete(message.service);
        log.info(`agent ${agent}: service ${message.service} withdrawn`);
        return;
      case "refuse": {
        const client = pending.take(message.conn);
        if (!client || client.session !== session.id) return;
        log.warn(
          `client ${client.client} for service ${client.service}: agent ${agent} refused: ${message.reason}`,
        );
        release(client.conn);
        return;
      }
      default:
        throw new ProtocolError(`unexpected "${message.type}" on a control channel`);
    }
  }

  /** Takes a session's services offline and closes the clients it left waiting. */
  function endSession(session: AgentSession): void {
    session.channel.close();
    open.delete(session.channel.conn);
    if (sessions.get(session.agentId) === session) sessions.delete(session.agentId);
    for (const id of session.services) services.unregister(id, session);
    for (const client of pending.takeSession(session.id)) {
      log.warn(
        `client ${client.client} for service ${client.service}: agent ${session.agentId} went away; closing`,
      );
      release(client.conn);
    }
  }

  /** S6–S7: hold a client and ask the service's agent for a data channel. */
  function holdClient(service: string, conn: Deno.TcpConn): void {
    track(conn);
    const client = formatAddr(conn.remoteAddr);
    const session = services.ownerOf(service);
    if (!session) {
      log.warn(
        `client ${client} for service ${service}: no agent is serving it now; closing ` +
          `(start the agent that has --service ${service}=...)`,
      );
      return release(conn);
    }
    if (pending.countForSession(session.id) >= MAX_PENDING_PER_AGENT) {
      log.warn(
        `client ${client} for service ${service}: agent ${session.agentId} already has ` +
          `${MAX_PENDING_PER_AGENT} clients waiting for data channels; closing`,
      );
      return release(conn);
    }
    const token = randomToken();
    pending.add(
      token,
      {
        conn,
        service,
        session: session.id,
        agent: session.agentId,
        client,
        since: performance.now(),
      },
      connectTimeoutMs,
      (expired) => {
        log.warn(
          `client ${client} for service ${service}: agent ${session.agentId} opened no data ` +
            `channel within ${connectTimeoutMs} ms; closing`,
        );
        release(expired.conn);
      },
    );
    session.channel.send({ type: "connect", service, conn: token, client });
  }

  /** S11: match a data channel to its held client and splice them. */
  async function acceptDataChannel(
    conn: Deno.Conn,
    reader: FrameReader,
    message: Extract<AgentMessage, { type: "data" }>,
  ): Promise<void> {
    const badVersion = versionProblem(message.version);
    if (badVersion) return refuse(conn, badVersion);
    const claimed = pending.claim(message.conn, message.session);
    if (typeof claimed === "string") {
      return refuse(conn, `data channel with a connection id ${claimed}`);
    }
    const { client, service, agent } = claimed;
    try {
      await writeAll(conn, encodeFrame({ type: "ready" }));
      const early = reader.takeRest();
      if (early.length > 0) await writeAll(claimed.conn, early);
      const moved = await splice(claimed.conn, conn);
      log.info(
        `connection closed: service=${service} agent=${agent} client=${client} ` +
          `from_client=${moved.aToB} to_client=${moved.bToA + early.length} ` +
          `duration_ms=${Math.round(performance.now() - claimed.since)}`,
      );
    } finally {
      release(claimed.conn);
      release(conn);
    }
  }

  return {
    address,
    stats: () => ({ agents: sessions.size, pending: pending.size, connections: open.size }),
    close() {
      closeQuietly(listener);
      services.close();
      for (const session of sessions.values()) endSession(session);
      for (const conn of open) release(conn);
    },
  };
}
