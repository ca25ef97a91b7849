/**
 * The agent: keeps one control channel to the relay (S1, S3), and for each client the relay
 * announces, dials the named service and opens a data channel back to the relay (S8–S10).
 * It only ever dials out, and only to the relay and the services its own configuration names.
 *
 * @example
 * ```ts
 * import { RelayDialer } from "../tls.ts";
 * const relay = { hostname: "relay.example.com", port: 7835 };
 * const dialer = new RelayDialer(relay, { kind: "system" }); // trust the system's roots
 * const services = new Map([["web", { target: { hostname: "127.0.0.1", port: 3000 } }]]);
 * const controller = new AbortController(); // abort() to stop
 * const options = { dialer, secret: "a-long-shared-secret", id: "office", services };
 * await runAgent(options, controller.signal);
 * ```
 */

import { computeProof, randomToken, sameToken, secretKey } from "../auth.ts";
import { Backoff } from "../backoff.ts";
import { ControlChannel } from "../channel.ts";
import { ConnectionSet, drain, SHUTDOWN_TIMEOUT_MS } from "../drain.ts";
import { createLogger } from "../log.ts";
import {
  closeQuietly,
  type Conn,
  deadline,
  describeError,
  dial,
  formatHostPort,
  isUnspecified,
  parseHostPort,
  writeAll,
} from "../net.ts";
import {
  decodeRelayMessage,
  encodeFrame,
  FrameReader,
  HANDSHAKE_TIMEOUT_MS,
  PROTOCOL_VERSION,
  ProtocolError,
  type RelayMessage,
} from "../protocol.ts";
import type { AgentService } from "../cli.ts";
import { splice } from "../splice.ts";
import { type RelayDialer, UntrustedRelayError } from "../tls.ts";

/** Time allowed to connect to the relay or to a service. */
export const DIAL_TIMEOUT_MS = 5_000;
/** First pause before reconnecting to the relay; it doubles after each failed attempt. */
export const RECONNECT_MIN_MS = 500;
/** Default longest pause between reconnection attempts. */
export const RECONNECT_MAX_MS = 10_000;

/** What an agent is started with. */
export interface AgentOptions {
  /** Opens connections to the relay's agent port, with TLS as configured. */
  dialer: RelayDialer;
  /** The shared secret. */
  secret: string;
  /** This agent's id, unique among the relay's agents. */
  id: string;
  /** Service id → the address the agent dials for it, and the public port it asks for. */
  services: Map<string, AgentService>;
  /** Longest pause between reconnection attempts (default {@link RECONNECT_MAX_MS}). */
  reconnectMaxMs?: number;
  /**
   * When the relay refuses this agent, try again after this long instead of stopping with
   * {@link AgentFatalError} (default: stop).
   */
  retryRefusedMs?: number;
  /** After `signal` aborts, how long open connections get to finish before they are closed. */
  shutdownTimeoutMs?: number;
  /** Close a client connection once no byte has moved either way for this long (default: never). */
  idleTimeoutMs?: number;
  /** Given, once, a function that reports what the agent holds now (for a status signal). */
  watch?: (stats: () => AgentStats) => void;
}

/** What a running agent holds now, for operators (SIGUSR2) and tests. */
export interface AgentStats {
  /** Whether the control channel to the relay is up. */
  relay: "connected" | "disconnected";
  /** Open service and data connections. */
  connections: number;
}

/** A problem that retrying cannot fix (wrong secret, incompatible relay): the agent stops. */
export class AgentFatalError extends Error {
  override name = "AgentFatalError";
}

type Channel = ControlChannel<RelayMessage>;

const log = createLogger("agent");

/**
 * Runs the agent until `signal` aborts, reconnecting with exponential backoff and jitter whenever
 * the control channel is lost. Rejects with {@link AgentFatalError} when the relay refuses it
 * (unless `retryRefusedMs` is set). Once `signal` aborts, open connections get up to
 * `shutdownTimeoutMs` to finish.
 */
export async function runAgent(options: AgentOptions, signal: AbortSignal): Promise<void> {
  const open = new ConnectionSet(); // service and data connections, which outlive a session
  const state = { connected: false };
  options.watch?.(() => ({
    relay: state.connected ? "connected" : "disconnected",
    connections: open.size,
  }));
  const backoff = new Backoff(RECONNECT_MIN_MS, options.reconnectMaxMs ?? RECONNECT_MAX_MS);
  try {
    while (!signal.aborted) {
      let ended;
      try {
        ended = await runSession(options, signal, open, state);
      } catch (error) {
        if (!(error instanceof AgentFatalError) || options.retryRefusedMs === undefined) {
          throw error;
        }
        log.error(
          `${error.message}; trying again in ${options.retryRefusedMs / 1000} s (--retry-refused)`,
        );
        await sleep(options.retryRefusedMs, signal);
        continue;
      }
      if (signal.aborted) break;
      if (ended.established) backoff.reset();
      const waitMs = backoff.next();
      log.warn(`${ended.reason}; reconnecting in ${waitMs} ms (attempt ${backoff.attempt})`);
      await sleep(waitMs, signal);
    }
    await drain(open, () => open.closeAll(), options.shutdownTimeoutMs ?? SHUTDOWN_TIMEOUT_MS, log);
  } finally {
    open.closeAll();
  }
}

/** One control channel, from dialing to its end; returns why it ended. */
async function runSession(
  options: AgentOptions,
  signal: AbortSignal,
  open: ConnectionSet,
  state: { connected: boolean },
): Promise<{ reason: string; established: boolean }> {
  const relayName = formatHostPort(options.dialer.relay);
  let conn: Conn;
  try {
    conn = await options.dialer.dial(DIAL_TIMEOUT_MS);
  } catch (error) {
    if (error instanceof UntrustedRelayError) throw new AgentFatalError(error.message);
    return {
      reason: `cannot reach the relay at ${relayName}: ${describeError(error)}`,
      established: false,
    };
  }
  const channel: Channel = new ControlChannel(conn, decodeRelayMessage);
  const stop = () => channel.close("the agent is shutting down");
  signal.addEventListener("abort", stop);
  let established = false;
  try {
    const session = await deadline(
      handshake(channel, options),
      HANDSHAKE_TIMEOUT_MS,
      conn,
      `the handshake with the relay at ${relayName}`,
    );
    established = state.connected = true;
    log.info(`connected to the relay at ${relayName} as agent ${options.id}`);
    channel.startHeartbeat(
      session.heartbeatMs,
      (silentMs) =>
        log.warn(`the relay at ${relayName} has been silent for ${Math.round(silentMs)} ms`),
    );
    for (const [id, { port }] of options.services) {
      channel.send({ type: "register", service: id, ...(port === undefined ? {} : { port }) });
    }
    for (let message; (message = await channel.receive()) !== null;) {
      handleControlMessage(message, options, channel, session.session, open);
    }
    return { reason: `the relay at ${relayName} closed the control channel`, established };
  } catch (error) {
    if (error instanceof AgentFatalError) throw error;
    if (error instanceof ProtocolError) {
      channel.send({ type: "error", message: error.message });
      // Nonsense before the handshake completes is not a glitch: the address or setup is wrong.
      if (!established) throw new AgentFatalError(`the relay at ${relayName}: ${error.message}`);
    }
    return { reason: `control channel to ${relayName} lost: ${describeError(error)}`, established };
  } finally {
    state.connected = false;
    signal.removeEventListener("abort", stop);
    channel.close();
  }
}

/** S1: mutual proof of the secret; resolves with the relay's welcome. */
async function handshake(
  channel: Channel,
  options: AgentOptions,
): Promise<Extract<RelayMessage, { type: "welcome" }>> {
  const key = secretKey(options.secret);
  const nonce = randomToken();
  channel.send({ type: "hello", version: PROTOCOL_VERSION, agent: options.id, nonce });
  const challenge = await expect(channel, "challenge");
  channel.send({
    type: "auth",
    proof: computeProof(key, "agent", options.id, nonce, challenge.nonce),
  });
  const welcome = await expect(channel, "welcome");
  const relayProof = computeProof(key, "relay", options.id, nonce, challenge.nonce);
  if (!sameToken(relayProof, challenge.proof)) {
    throw new AgentFatalError(
      `the relay at ${formatHostPort(options.dialer.relay)} could not prove it holds the secret: ` +
        "it is not the relay you meant, or its secret differs from this agent's",
    );
  }
  return welcome;
}

/** The next message, which must be of type `type`; an `error` from the relay is fatal. */
async function expect<T extends RelayMessage["type"]>(
  channel: Channel,
  type: T,
): Promise<Extract<RelayMessage, { type: T }>> {
  const message = await channel.receive();
  if (message === null) throw new Error("the relay closed the connection during the handshake");
  if (message.type === "error") throw new AgentFatalError(`the relay refused: ${message.message}`);
  if (message.type !== type) {
    throw new ProtocolError(`expected "${type}" from the relay, got "${message.type}"`);
  }
  return message as Extract<RelayMessage, { type: T }>;
}

function handleControlMessage(
  message: RelayMessage,
  options: AgentOptions,
  channel: Channel,
  session: string,
  open: ConnectionSet,
): void {
  switch (message.type) {
    case "registered": {
      const target = formatHostPort(options.services.get(message.service)!.target);
      const at = parseHostPort(message.address);
      if (isUnspecified(at.hostname)) at.hostname = options.dialer.relay.hostname;
      log.info(`service ${message.service} (${target}) is reachable at ${formatHostPort(at)}`);
      return;
    }
    case "refused":
      log.error(`service ${message.service} was refused by the relay: ${message.reason}`);
      return;
    case "connect":
      serveClient(message, options, channel, session, open);
      return;
    case "error":
      log.error(`the relay reports: ${message.message}`);
      return;
    default:
      throw new ProtocolError(`unexpected "${message.type}" on the control channel`);
  }
}

/** S8–S10: dial the service, open a data channel for this client, and splice the two. */
async function serveClient(
  request: Extract<RelayMessage, { type: "connect" }>,
  options: AgentOptions,
  channel: Channel,
  session: string,
  open: ConnectionSet,
): Promise<void> {
  const label = `service ${request.service} client ${request.client}`;
  const target = options.services.get(request.service)?.target;
  const refuse = (reason: string) => {
    log.warn(`${label}: ${reason}`);
    channel.send({ type: "refuse", conn: request.conn, reason });
  };
  if (!target) return refuse(`agent ${options.id} has no service ${request.service}`);
  // S9 and S10 at once: the relay connection's handshake overlaps the service's.
  const [service, relay] = await Promise.allSettled([
    dial(target, DIAL_TIMEOUT_MS),
    options.dialer.dial(DIAL_TIMEOUT_MS),
  ]);
  if (service.status === "rejected") {
    if (relay.status === "fulfilled") closeQuietly(relay.value);
    return refuse(
      `cannot reach ${formatHostPort(target)}: ${describeError(service.reason)} ` +
        "(is the service running?)",
    );
  }
  const upstream = service.value;
  open.add(upstream);
  let data: Conn | undefined;
  try {
    if (relay.status === "rejected") throw relay.reason;
    data = relay.value;
    open.add(data);
    await writeAll(
      data,
      encodeFrame({ type: "data", version: PROTOCOL_VERSION, session, conn: request.conn }),
    );
    const reader = new FrameReader(data);
    const payload = await deadline(
      reader.next(),
      HANDSHAKE_TIMEOUT_MS,
      data,
      "the data channel handshake",
    );
    const answer = payload && decodeRelayMessage(payload);
    if (answer?.type !== "ready") {
      throw new Error(
        answer?.type === "error"
          ? `the relay refused the data channel: ${answer.message}`
          : "the relay closed the data channel before accepting it",
      );
    }
    const early = reader.takeRest();
    if (early.length > 0) await writeAll(upstream, early);
    spliceService(request, data, upstream, early.length, options.idleTimeoutMs, open);
  } catch (error) {
    log.warn(`${label}: ${describeError(error)}`);
    forget(open, upstream, data);
  }
}

/**
 * Splices a data channel with its service connection, then logs the connection (`early`: bytes
 * that reached the service before the splice) and closes both. Not awaited by
 * `serveClient`: its frame (the frame reader, the relay's answer) would stay alive as long as the
 * connection.
 */
function spliceService(
  { service, client }: Extract<RelayMessage, { type: "connect" }>,
  data: Conn,
  upstream: Conn,
  early: number,
  idleTimeoutMs: number | undefined,
  open: ConnectionSet,
): void {
  const started = performance.now();
  splice(data, upstream, { idleTimeoutMs }).then((moved) => {
    log.info(
      `connection closed${moved.idle ? ` (idle for ${idleTimeoutMs} ms)` : ""}: ` +
        `service=${service} client=${client} ` +
        `to_service=${moved.aToB + early} from_service=${moved.bToA} ` +
        `duration_ms=${Math.round(performance.now() - started)}`,
    );
    forget(open, data, upstream);
  });
}

/** Closes connections and takes them out of `open`. */
function forget(open: ConnectionSet, ...conns: (Conn | undefined)[]): void {
  for (const conn of conns) {
    if (conn) {
      open.delete(conn);
      closeQuietly(conn);
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
