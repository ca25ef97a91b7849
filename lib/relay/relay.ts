/**
 * The relay: accepts agents' control and data channels on one port, publishes their services on
 * public listeners, admits clients by the access rules, and joins each client to a data channel
 * opened for it (S2, S4, S6, S7, S11).
 *
 * @example
 * ```ts
 * const relay = await startRelay({
 *   listen: { hostname: "127.0.0.1", port: 0 },
 *   secret: "a-long-shared-secret",
 *   portRange: { first: 20000, last: 20999 },
 * });
 * // ... later
 * relay.close();
 * ```
 */

import { computeProof, randomToken, sameBytes, sameToken, secretKey } from "../auth.ts";
import { ControlChannel } from "../channel.ts";
import { ConnectionMap, drain } from "../drain.ts";
import { createLogger } from "../log.ts";
import {
  acceptEach,
  closeQuietly,
  type Conn,
  deadline,
  describeError,
  formatAddr,
  formatHostPort,
  type HostPort,
  type Listener,
  type PortRange,
  writeAll,
} from "../net.ts";
import {
  type AgentMessage,
  decodeAgentMessage,
  encodeFrame,
  FrameReader,
  HEARTBEAT_INTERVAL_MS,
  PROTOCOL_VERSION,
  ProtocolError,
} from "../protocol.ts";
import { SMALL_BUFFER_BYTES, splice, type StartedRead } from "../splice.ts";
import { LogThrottle } from "../throttle.ts";
import { type CertifiedKey, listenForAgents, peerSpeaksNoTls } from "../tls.ts";
import { AccessControl } from "./access.ts";
import { EMPTY_CONFIG, portAllowed, type RelayConfig } from "./config.ts";
import { holdFirstBytes, type PendingClient, PendingTable } from "./pending.ts";
import { ServiceTable } from "./services.ts";

const READY_FRAME = encodeFrame({ type: "ready" });

/** The `ready` frame followed by `bytes`, as one buffer for one write. */
function withReady(bytes: Uint8Array): Uint8Array {
  const greeting = new Uint8Array(READY_FRAME.length + bytes.length);
  greeting.set(READY_FRAME);
  greeting.set(bytes, READY_FRAME.length);
  return greeting;
}

/** Default time a client is held while its agent opens the data channel; the id then expires. */
export const CONNECT_TIMEOUT_MS = 10_000;

/** What a relay is started with. */
export interface RelayOptions {
  /** Where agents dial, for both control and data channels. */
  listen: HostPort;
  /** The shared secret of agents not listed in `config.agents` (needed when it lists none). */
  secret?: string;
  /** Agents, access rules and limits (`--config`); replaceable later with `reload`. */
  config?: RelayConfig;
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
  /** Close a client connection once no byte has moved either way for this long (default: never). */
  idleTimeoutMs?: number;
}

/** A running relay. */
export interface Relay {
  /** The address agents dial (with the actual port when 0 was asked for). */
  readonly address: HostPort;
  /** Counts of what the relay holds now, for tests and operators. */
  stats(): {
    agents: number;
    services: number;
    pending: number;
    connections: number;
    unauthenticated: number;
    refusedClients: number;
  };
  /** Applies a new configuration: removed agents are disconnected, other tunnels stay up. */
  reload(config: RelayConfig): void;
  /** Stops listening and closes every connection. */
  close(): void;
  /**
   * Stops listening, ends every agent session and waiting client, lets spliced connections
   * finish for up to `timeoutMs`, then closes the rest.
   */
  shutdown(timeoutMs: number): Promise<void>;
}

interface AgentSession {
  /** The unguessable session id that binds this agent's data channels. */
  id: string;
  agentId: string;
  /** The HMAC key the agent authenticated with; a reload that changes it ends the session. */
  key: Uint8Array;
  channel: ControlChannel<AgentMessage>;
  services: Set<string>;
}

const log = createLogger("relay");

/** Starts a relay; throws if its agent port or a pinned service address cannot be bound. */
export async function startRelay(options: RelayOptions): Promise<Relay> {
  const connectTimeoutMs = options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
  const heartbeatMs = options.heartbeatMs ?? HEARTBEAT_INTERVAL_MS;
  const sharedKey = options.secret === undefined ? undefined : secretKey(options.secret);
  let config = options.config ?? EMPTY_CONFIG;
  const access = new AccessControl(config.services);
  const sessions = new Map<string, AgentSession>(); // by agent id
  const pending = new PendingTable();
  /** Every client, control and data connection, with what to do when it is released. */
  const open = new ConnectionMap<(() => void) | undefined>();
  let unauthenticated = 0;
  let refusedClients = 0;
  const clientLog = new LogThrottle();
  const agentPortLog = new LogThrottle();
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
  let listener: Listener;
  try {
    listener = await listenForAgents(options.listen, options.tls);
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
  acceptEach(listener, acceptAgentConnection, onAcceptError);
  log.info(`listening for agents on ${formatHostPort(address)}`);
  for (const [id, at] of services.addresses()) {
    log.info(`service ${id} pinned to ${formatHostPort(at)}`);
  }

  function track(conn: Conn, onRelease?: () => void): void {
    open.set(conn, onRelease);
  }
  function release(conn: Conn): void {
    const onRelease = open.get(conn);
    open.delete(conn);
    closeQuietly(conn);
    onRelease?.();
  }
  /** Releases every connection; returns how many there were. */
  function releaseAll(): number {
    const all = [...open.keys()];
    all.forEach(release);
    return all.length;
  }

  /** Closes the listeners and every agent session; client and data connections stay. */
  function stopAccepting(reason: string): void {
    closeQuietly(listener);
    services.close();
    for (const session of sessions.values()) endSession(session, reason);
  }

  /** Logs at most once per interval per address and kind of event. */
  function warnThrottled(log_: LogThrottle, ip: string, kind: string, message: string) {
    log_.pass(`${ip} ${kind}`, (note) => log.warn(message + note));
  }

  /** A throttled warning about a connection on the agent port; `message` gets its address. */
  function warnAgentPort(conn: Conn, kind: string, message: (from: string) => string) {
    const { hostname } = conn.remoteAddr as Deno.NetAddr;
    warnThrottled(agentPortLog, hostname, kind, message(formatAddr(conn.remoteAddr)));
  }

  /** Counts the connection as unauthenticated until its handshake ends, within the limit. */
  function acceptAgentConnection(conn: Conn): void {
    if (unauthenticated >= config.limits.maxUnauthenticated) {
      closeQuietly(conn);
      warnAgentPort(
        conn,
        "busy",
        (from) =>
          `refused agent connection from ${from}: ${config.limits.maxUnauthenticated} ` +
          "connections are already in their handshake (limits.max_unauthenticated)",
      );
      return;
    }
    unauthenticated++;
    let counted = true;
    const authenticated = () => {
      if (counted) unauthenticated--;
      counted = false;
    };
    track(conn, authenticated);
    handleAgentConnection(conn, authenticated).catch((error) => {
      const why = describeError(error);
      const hint = options.tls && error instanceof Error && peerSpeaksNoTls(error)
        ? " (not TLS: is the agent running with --insecure? use TLS on both sides, or --insecure on both)"
        : "";
      warnAgentPort(conn, "failed", (from) => `agent connection from ${from}: ${why}${hint}`);
      release(conn);
    });
  }

  /** First frame decides: `hello` opens a control channel, `data` a data channel. */
  async function handleAgentConnection(conn: Conn, authenticated: () => void) {
    const reader = new FrameReader(conn);
    let message: AgentMessage;
    try {
      const first = await deadline(
        reader.next(),
        config.limits.handshakeTimeoutMs,
        conn,
        "the opening frame",
      );
      if (first === null) return release(conn);
      message = decodeAgentMessage(first);
    } catch (error) {
      if (error instanceof ProtocolError) return refuse(conn, error.message);
      throw error;
    }
    if (message.type === "hello") await runControl(conn, reader, message, authenticated);
    else if (message.type === "data") await acceptDataChannel(conn, reader, message, authenticated);
    else refuse(conn, `expected "hello" or "data" first, got "${message.type}"`);
  }

  /** Sends an error frame, logs why, and closes. */
  function refuse(conn: Conn, why: string): void {
    warnAgentPort(
      conn,
      why.slice(0, 40),
      (from) => `refused agent connection from ${from}: ${why}`,
    );
    writeAll(conn, encodeFrame({ type: "error", message: why }))
      .catch(() => {})
      .finally(() => release(conn));
  }

  function versionProblem(version: number): string | undefined {
    if (version === PROTOCOL_VERSION) return undefined;
    return `protocol version ${version} is not supported; this relay speaks ${PROTOCOL_VERSION}: ` +
      "run the same porthole version on agent and relay";
  }

  /** The key `agentId` may authenticate with under `cfg`: its own, the shared one, or none. */
  function configuredKey(cfg: RelayConfig, agentId: string): Uint8Array | undefined {
    return cfg.agents ? cfg.agents.get(agentId)?.key : sharedKey;
  }

  /** S1–S2: authenticate, then S3–S4 and S7–S8 until the channel ends. */
  async function runControl(
    conn: Conn,
    reader: FrameReader,
    hello: Extract<AgentMessage, { type: "hello" }>,
    authenticated: () => void,
  ): Promise<void> {
    const badVersion = versionProblem(hello.version);
    if (badVersion) return refuse(conn, badVersion);
    const channel = new ControlChannel(conn, decodeAgentMessage, reader);
    // An unknown agent gets a random key, so it fails exactly like a wrong secret.
    const key = configuredKey(config, hello.agent) ?? crypto.getRandomValues(new Uint8Array(32));
    const relayNonce = randomToken();
    channel.send({
      type: "challenge",
      nonce: relayNonce,
      proof: computeProof(key, "relay", hello.agent, hello.nonce, relayNonce),
    });
    const auth = await deadline(
      channel.receive(),
      config.limits.handshakeTimeoutMs,
      conn,
      "authentication",
    );
    if (auth === null) return release(conn);
    if (auth.type !== "auth") return refuse(conn, `expected "auth", got "${auth.type}"`);
    const expected = computeProof(key, "agent", hello.agent, hello.nonce, relayNonce);
    if (!sameToken(expected, auth.proof)) {
      return refuse(
        conn,
        `agent ${hello.agent} failed authentication: wrong secret or unknown agent ` +
          "(give agent and relay the same secret; with --config, list the agent under [agents])",
      );
    }
    authenticated();
    const session: AgentSession = {
      id: randomToken(),
      agentId: hello.agent,
      key,
      channel,
      services: new Set(),
    };
    const stale = sessions.get(hello.agent);
    if (stale) {
      log.warn(`agent ${hello.agent} connected again; closing its previous session`);
      endSession(stale, "replaced by a new session of the same agent");
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

  /** Why `session` may not serve `service` (on `port`), or undefined if it may. */
  function registrationProblem(
    session: AgentSession,
    service: string,
    port: number | undefined,
  ): string | undefined {
    const entry = config.agents?.get(session.agentId);
    if (entry?.services && !entry.services.has(service)) {
      return `agent ${session.agentId} may not serve ${service} (see services in its [agents] entry)`;
    }
    if (
      !session.services.has(service) && session.services.size >= config.limits.maxServicesPerAgent
    ) {
      return `agent ${session.agentId} already serves ${config.limits.maxServicesPerAgent} services ` +
        "(limits.max_services_per_agent)";
    }
    if (port === undefined || options.expose?.has(service)) return undefined;
    const allowed = entry ? entry.ports : options.portRange ? [options.portRange] : [];
    if (!portAllowed(port, allowed)) {
      return `agent ${session.agentId} may not claim public port ${port} ` +
        (entry ? "(see ports in its [agents] entry)" : "(outside --port-range)");
    }
    return undefined;
  }

  function handleControlMessage(session: AgentSession, message: AgentMessage): void {
    const agent = session.agentId;
    switch (message.type) {
      case "register": {
        const { service, port } = message;
        const problem = registrationProblem(session, service, port);
        const result = problem ? { reason: problem } : services.register(
          service,
          session,
          (owner) => `agent ${owner.agentId}`,
          port,
        );
        if ("reason" in result) {
          log.warn(`agent ${agent}: service ${service} refused: ${result.reason}`);
          session.channel.send({ type: "refused", service, reason: result.reason });
          return;
        }
        session.services.add(service);
        const at = formatHostPort(result.address);
        log.info(`agent ${agent}: service ${service} online at ${at}`);
        session.channel.send({ type: "registered", service, address: at });
        return;
      }
      case "unregister":
        withdraw(session, message.service);
        return;
      case "refuse": {
        const client = pending.claim(message.conn, session.id);
        if (typeof client === "string") return;
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

  function withdraw(session: AgentSession, service: string): void {
    if (!session.services.delete(service)) return;
    services.unregister(service, session);
    log.info(`agent ${session.agentId}: service ${service} withdrawn`);
  }

  /** Takes a session's services offline and closes the clients it left waiting. */
  function endSession(session: AgentSession, reason?: string): void {
    session.channel.close(reason);
    open.delete(session.channel.conn);
    if (sessions.get(session.agentId) === session) sessions.delete(session.agentId);
    for (const id of session.services) services.unregister(id, session);
    if (session.services.size > 0) {
      log.info(`agent ${session.agentId}: ${[...session.services].join(", ")} offline`);
      session.services.clear();
    }
    for (const client of pending.takeSession(session.id)) {
      log.warn(
        `client ${client.client} for service ${client.service}: agent ${session.agentId} went away; closing`,
      );
      release(client.conn);
    }
  }

  /** S6–S7: admit a client, hold it, and ask the service's agent for a data channel. */
  function holdClient(service: string, conn: Deno.TcpConn): void {
    const client = formatAddr(conn.remoteAddr);
    const ip = conn.remoteAddr.hostname;
    const refuseClient = (kind: string, why: string) => {
      refusedClients++;
      closeQuietly(conn);
      warnThrottled(
        clientLog,
        ip,
        `${service} ${kind}`,
        `client ${client} for service ${service}: ${why}`,
      );
    };
    const session = services.ownerOf(service);
    if (!session) {
      return refuseClient(
        "offline",
        `no agent is serving it now; closing (start the agent that has --service ${service}=...)`,
      );
    }
    if (pending.countForSession(session.id) >= config.limits.maxPendingPerAgent) {
      return refuseClient(
        "pending",
        `agent ${session.agentId} already has ${config.limits.maxPendingPerAgent} clients waiting ` +
          "for data channels (limits.max_pending_per_agent); closing",
      );
    }
    const admission = access.admit(service, ip);
    if (!admission.admitted) return refuseClient("access", `refused: ${admission.reason}`);
    track(conn, admission.release);
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
        held: holdFirstBytes(conn, SMALL_BUFFER_BYTES),
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
    conn: Conn,
    reader: FrameReader,
    message: Extract<AgentMessage, { type: "data" }>,
    authenticated: () => void,
  ): Promise<void> {
    const badVersion = versionProblem(message.version);
    if (badVersion) return refuse(conn, badVersion);
    const claimed = pending.claim(message.conn, message.session);
    if (typeof claimed === "string") {
      return refuse(conn, `data channel with a connection id ${claimed}`);
    }
    authenticated();
    const { conn: clientConn, held } = claimed;
    try {
      // S11: the bytes the client sent while it waited go out with `ready`, in one write; a read
      // still under way is handed to the splice, and either way the splice reads into its buffer.
      const heldCount = held.outcome ?? 0;
      await writeAll(conn, withReady(held.buffer.subarray(0, heldCount)));
      const early = reader.takeRest();
      if (early.length > 0) await writeAll(clientConn, early);
      spliceClient(claimed, conn, heldCount > 0 ? { buffer: held.buffer } : held, {
        fromClient: heldCount,
        toClient: early.length,
      });
    } catch (error) {
      release(clientConn);
      release(conn);
      throw error;
    }
  }

  /**
   * Splices a client with its data channel until both ends are done, then logs the connection
   * (`moved`: bytes that went across before the splice) and releases both. Not awaited by
   * `acceptDataChannel`: the frames of the handshake would stay alive as long as the connection.
   */
  function spliceClient(
    { conn: clientConn, client, service, agent, since }: PendingClient,
    conn: Conn,
    clientRead: StartedRead,
    moved: { fromClient: number; toClient: number },
  ): void {
    splice(clientConn, conn, { idleTimeoutMs: options.idleTimeoutMs, startedReadA: clientRead })
      .then((spliced) => {
        log.info(
          `connection closed${spliced.idle ? ` (idle for ${options.idleTimeoutMs} ms)` : ""}: ` +
            `service=${service} agent=${agent} client=${client} ` +
            `from_client=${spliced.aToB + moved.fromClient} ` +
            `to_client=${spliced.bToA + moved.toClient} ` +
            `duration_ms=${Math.round(performance.now() - since)}`,
        );
        release(clientConn);
        release(conn);
      });
  }

  function reload(next: RelayConfig): void {
    config = next;
    access.setRules(next.services);
    for (const session of [...sessions.values()]) {
      const key = configuredKey(next, session.agentId);
      if (!key || !sameBytes(key, session.key)) {
        log.warn(
          `agent ${session.agentId} is no longer allowed with its secret by the configuration; ` +
            "disconnecting it",
        );
        endSession(session, "no longer allowed by the relay's configuration");
        continue;
      }
      for (const service of [...session.services]) {
        const problem = registrationProblem(session, service, undefined);
        if (!problem) continue;
        withdraw(session, service);
        session.channel.send({ type: "refused", service, reason: problem });
      }
    }
    log.info("configuration reloaded");
  }

  return {
    address,
    stats: () => ({
      agents: sessions.size,
      services: [...sessions.values()].reduce((sum, session) => sum + session.services.size, 0),
      pending: pending.size,
      connections: open.size,
      unauthenticated,
      refusedClients,
    }),
    reload,
    close() {
      stopAccepting("the relay is stopping");
      releaseAll();
    },
    async shutdown(timeoutMs) {
      stopAccepting("the relay is shutting down");
      await drain(open, releaseAll, timeoutMs, log);
    },
  };
}
