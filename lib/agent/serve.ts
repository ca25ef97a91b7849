/**
 * Serving one client on the agent (S8–S13 in docs/flow.md): dial the service the relay named
 * (C4) and open a data channel back to the relay for the client's connection id (C3), both at
 * once, then splice the two until both ends are done. Or, for a client the relay gave to a spare
 * data channel (S10a), dial the service and answer `accept` on the spare.
 */

import type { OpenConnections } from "../drain.ts";
import { openDataChannel } from "../handshake.ts";
import { createLogger } from "../log.ts";
import { closeQuietly, concat, type Conn, describeError, dial, writeAll } from "../net.ts";
import { formatHostPort, type HostPort, parseHostPort } from "../address.ts";
import { proxyHeader, type ProxyVersion } from "../proxy_header.ts";
import { logId, type RelayMessageOf, type ServiceKind } from "../protocol.ts";
import { encodeFrame } from "../message_codec.ts";
import { splice } from "../splice.ts";
import type { RelayDialer } from "../transport/transport.ts";
import type { EarlyData } from "./early.ts";
import type { HealthCheck } from "./health.ts";
import type { LiveConnections } from "../admin/live.ts";

/** Time allowed to connect to the relay or to a service. */
export const DIAL_TIMEOUT_MS = 5_000;

/**
 * A service as the agent publishes it: where to dial it, what it speaks (which decides the
 * relay's fronts that reach it; default tcp), and the public port it asks for.
 */
export interface AgentService {
  target: HostPort;
  kind?: ServiceKind;
  port?: number;
  /** Open each connection with a PROXY protocol header of this version, naming the client. */
  proxyProtocol?: ProxyVersion;
  /** Host names it claims on the relay's name-routing fronts besides `ID.DOMAIN`. */
  hosts?: string[];
  /** How its health is checked (lib/agent/health.ts); unchecked when absent. */
  health?: HealthCheck;
}

/** What serving a client needs from the agent. */
export interface ServeContext {
  agentId: string;
  services: ReadonlyMap<string, AgentService>;
  dialer: RelayDialer;
  /** The session the data channel belongs to. */
  session: string;
  /** The service and data connections, which outlive a session. */
  open: OpenConnections;
  idleTimeoutMs?: number;
  /** Tells the relay this client will not be served, and why (S8). */
  refuse(conn: string, reason: string): void;
  /** Early data over the control channel (lib/agent/early.ts), when the relay granted it. */
  early?: EarlyData;
  /** Where spliced connections are counted, for the admin API. */
  live: LiveConnections;
}

const log = createLogger("agent");

/** S8–S10: dials the service, opens a data channel for this client, and splices the two. */
export async function serveClient(
  request: RelayMessageOf<"connect">,
  context: ServeContext,
): Promise<void> {
  const since = performance.now();
  const label = `conn=${logId(request.conn)} service ${request.service} client ${request.client}`;
  const service = context.services.get(request.service);
  const target = service?.target;
  const refuse = (reason: string) => {
    log.warn(`${label}: ${reason}`);
    context.refuse(request.conn, reason);
  };
  if (!target) return refuse(`agent ${context.agentId} has no service ${request.service}`);
  // S9 and S10 at once: the relay connection's handshake overlaps the service's.
  const [dialed, relay] = await Promise.allSettled([
    dial(target, DIAL_TIMEOUT_MS),
    context.dialer.dial(DIAL_TIMEOUT_MS),
  ]);
  if (dialed.status === "rejected") {
    if (relay.status === "fulfilled") closeQuietly(relay.value);
    return refuse(
      `cannot reach ${formatHostPort(target)}: ${describeError(dialed.reason)} ` +
        "(is the service running?)",
    );
  }
  const upstream = dialed.value;
  const { open } = context;
  open.track(upstream);
  let data: Conn | undefined;
  if (relay.status === "rejected") {
    open.release(upstream);
    return refuse(`cannot open a data channel to the relay: ${describeError(relay.reason)}`);
  }
  try {
    data = relay.value;
    open.track(data);
    const { rest } = await openDataChannel(data, context.session, request.conn);
    await connectService(request, service!, data, upstream, rest, since, context);
  } catch (error) {
    log.warn(`${label}: ${describeError(error)}`);
    open.release(upstream);
    if (data) open.release(data);
  }
}

/** A client the relay asks the agent to serve: over the control channel, or on a spare. */
type ClientRequest = RelayMessageOf<"connect"> | RelayMessageOf<"client">;

const ACCEPT_FRAME = encodeFrame({ type: "accept" });

/**
 * S10a: serves the client the relay gave to the spare data channel `spare` (`early`: its first
 * bytes, which came with the request): dials the service, answers `accept` (or `refuse`, and
 * closes), and splices the two.
 */
export async function serveOnSpare(
  request: RelayMessageOf<"client">,
  spare: Conn,
  early: Uint8Array,
  context: ServeContext,
): Promise<void> {
  const since = performance.now();
  const label = `conn=${logId(request.conn)} service ${request.service} client ${request.client}`;
  const service = context.services.get(request.service);
  const { open } = context;
  const refuse = async (reason: string) => {
    log.warn(`${label}: ${reason}`);
    await writeAll(spare, encodeFrame({ type: "refuse", conn: request.conn, reason })).catch(
      () => {},
    );
    open.release(spare);
  };
  if (!service) return refuse(`agent ${context.agentId} has no service ${request.service}`);
  let upstream: Deno.TcpConn;
  try {
    upstream = await dial(service.target, DIAL_TIMEOUT_MS);
  } catch (error) {
    return refuse(
      `cannot reach ${formatHostPort(service.target)}: ${describeError(error)} ` +
        "(is the service running?)",
    );
  }
  open.track(upstream);
  try {
    await writeAll(spare, ACCEPT_FRAME);
    await connectService(request, service, spare, upstream, early, since, context);
  } catch (error) {
    log.warn(`${label}: ${describeError(error)}`);
    open.release(upstream);
    open.release(spare);
  }
}

/**
 * Hands the service its first bytes (the client's `early` ones, after a PROXY header if it asks
 * for one), then splices it with the data channel (`since`: when the request came).
 */
async function connectService(
  request: ClientRequest,
  service: AgentService,
  data: Conn,
  upstream: Conn,
  early: Uint8Array,
  since: number,
  context: ServeContext,
): Promise<void> {
  const first = service.proxyProtocol
    ? concat(await proxyHeaderFor(service.proxyProtocol, request), early)
    : early;
  if (first.length > 0) await writeAll(upstream, first);
  spliceService(
    request,
    data,
    upstream,
    { toService: early.length, fromService: 0, since },
    context,
  );
}

/** The PROXY header naming the request's client (and the relay address it dialled). */
export function proxyHeaderFor(
  version: ProxyVersion,
  { client, to }: ClientRequest,
): Promise<Uint8Array> {
  const unknown = { hostname: "", port: 0 };
  return proxyHeader(
    version,
    tryParseHostPort(client) ?? unknown,
    (to && tryParseHostPort(to)) || unknown,
  );
}

function tryParseHostPort(text: string): HostPort | undefined {
  try {
    return parseHostPort(text);
  } catch {
    return undefined;
  }
}

/**
 * Splices a data channel with its service connection, counted among the live connections, then
 * logs the connection (`moved`: bytes that went across before the splice, and when its request
 * came) and closes both. Not awaited by `serveClient`: its frame (the relay's answer) would stay
 * alive as long as the connection.
 */
export function spliceService(
  { service, client, conn }: ClientRequest,
  data: Conn,
  upstream: Conn,
  moved: { toService: number; fromService: number; since: number },
  { idleTimeoutMs, open, live, agentId }: ServeContext,
): void {
  const started = performance.now();
  const close = () => (closeQuietly(data), closeQuietly(upstream));
  const counted = live.start({ service, agent: agentId, client, since: moved.since, close }, {
    fromClient: moved.toService,
    toClient: moved.fromService,
  });
  splice(data, upstream, { idleTimeoutMs, counters: counted.spliced }).then((spliced) => {
    live.end(counted);
    log.info(
      `connection closed${spliced.idle ? ` (idle for ${idleTimeoutMs} ms)` : ""}: ` +
        `conn=${logId(conn)} service=${service} client=${client} ` +
        `to_service=${spliced.aToB + moved.toService} ` +
        `from_service=${spliced.bToA + moved.fromService} ` +
        `duration_ms=${Math.round(performance.now() - started)}`,
    );
    open.release(data);
    open.release(upstream);
  });
}
