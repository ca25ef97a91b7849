/**
 * The relay: wires the agent port, the sessions, the registry, the fronts and the rendezvous.
 * Agents' control and data channels arrive on the agent port (lib/relay/agent_port.ts); their
 * sessions (lib/relay/sessions.ts) register services in the registry (lib/relay/registry.ts)
 * and publish them on the fronts (lib/front/); a client arriving at a front is admitted here by
 * the access rules and held by the rendezvous (lib/relay/rendezvous.ts) until its agent's data
 * channel claims it.
 *
 * @example
 * ```ts
 * import { plainTcp } from "../transport/tcp.ts";
 * const relay = await startRelay({
 *   transport: plainTcp,
 *   listen: { hostname: "127.0.0.1", port: 0 },
 *   secret: "a-secret-of-16-characters-or-more",
 *   portRange: { first: 20000, last: 20999 },
 * });
 * relay.close();
 * ```
 */

import { formatMetrics } from "../admin/metrics.ts";
import { secretKey } from "../auth.ts";
import { drain, OpenConnections } from "../drain.ts";
import { type FrontsOptions, openFronts } from "../front/fronts.ts";
import { CertificateFiles } from "../front/certificates.ts";
import { HttpsFront } from "../front/https.ts";
import { createLogger } from "../log.ts";
import { formatHostPort, type HostPort, type PortRange } from "../address.ts";
import { HEARTBEAT_INTERVAL_MS } from "../protocol.ts";
import type { CertifiedKey } from "../transport/certificate.ts";
import type { AgentTransport } from "../transport/transport.ts";
import { WEBSOCKET_PATH } from "../transport/websocket.ts";
import { AccessControl } from "./access.ts";
import { Admission } from "./admission.ts";
import { AgentPort } from "./agent_port.ts";
import { EMPTY_CONFIG, type RelayConfig } from "./config.ts";
import { dataChannelHandlers } from "./data_channels.ts";
import { Publication } from "./publication.ts";
import { Registry } from "./registry.ts";
import { LiveConnections } from "../admin/live.ts";
import { serviceHealthRoute } from "./service_health.ts";
import { relayMetrics, relayStatus, type ReportedParts } from "./report.ts";
import { Rendezvous } from "./rendezvous.ts";
import { type AgentSession, Sessions } from "./sessions.ts";
import { Spares } from "./spares.ts";

/** What a relay is started with. */
export interface RelayOptions {
  /** How agents reach the agent port: TLS (lib/transport/tls.ts) or plain TCP (tcp.ts). */
  transport: AgentTransport;
  /** Where agents dial, for both control and data channels. */
  listen: HostPort;
  /** The path of agents' WebSocket upgrades on the agent port (default `/porthole`). */
  webSocketPath?: string;
  /** The shared secret of agents not listed in `config.agents` (needed when it lists none). */
  secret?: string;
  /** Agents, access rules and limits (`--config`); replaceable later with `reload`. */
  config?: RelayConfig;
  /** Service ids pinned to public addresses (`--expose`). */
  expose?: Map<string, HostPort>;
  /** Ports for services that are not pinned (`--port-range`). */
  portRange?: PortRange;
  /** The domain of services' names on the fronts that route by name (`--domain`). */
  domain?: string;
  /** The HTTP front (`--http`): HTTP services by host name on one port. */
  http?: FrontsOptions["http"];
  /**
   * The HTTPS front (`--https`): services by TLS server name, terminated or passed through; and
   * agents, by the relay's own names (`agentNames`), handed on to the agent port.
   */
  https?: Omit<NonNullable<FrontsOptions["https"]>, "agents"> & { agentNames?: string[] };
  /** The proxy front (`--proxy`): SOCKS5 and HTTP CONNECT to any service, by name. */
  proxy?: FrontsOptions["proxy"];
  /** Load balancers whose PROXY headers name the real client (`--proxy-protocol-from`). */
  trustedProxies?: string[];
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
    /** Spare data channels kept for agents' next clients. */
    spares: number;
    connections: number;
    unauthenticated: number;
    refusedClients: number;
    /** The fronts clients arrive at, e.g. `ports,http,proxy`. */
    fronts: string;
  };
  /** The admin API's `/status` document (lib/relay/report.ts). */
  status(): ReturnType<typeof relayStatus>;
  /** The admin API's `/metrics` text. */
  metrics(): string;
  /** The admin API's `/healthz/SERVICE` (lib/relay/service_health.ts). */
  extra(request: Request, path: string): Promise<Response | undefined>;
  /** Applies a new configuration: removed agents are disconnected, other tunnels stay up. */
  reload(config: RelayConfig): void;
  /** Terminates HTTPS with `certificates` from now on (the HTTPS front's, re-read on SIGHUP). */
  setHttpsCertificates(certificates: CertifiedKey[]): void;
  /** Stops listening and closes every connection. */
  close(): void;
  /**
   * Stops listening, ends every agent session and waiting client, lets spliced connections
   * finish for up to `timeoutMs`, then closes the rest.
   */
  shutdown(timeoutMs: number): Promise<void>;
}

const log = createLogger("relay");

/** Starts a relay; throws if its agent port or a pinned service address cannot be bound. */
export async function startRelay(options: RelayOptions): Promise<Relay> {
  let config = options.config ?? EMPTY_CONFIG;
  const pinned = options.expose ?? new Map<string, HostPort>();
  const policy = () => ({ config, pinned, portRange: options.portRange });
  const access = new AccessControl(config.services);
  /** Every client, control and data connection, with what to do when it is released. */
  const open = new OpenConnections();
  const registry = new Registry<AgentSession>();
  const live = new LiveConnections();
  const rendezvous: Rendezvous = new Rendezvous({
    open,
    connectTimeoutMs: options.connectTimeoutMs,
    idleTimeoutMs: options.idleTimeoutMs,
    live,
    retry: (client, taken, why): boolean => admission.retry(client, taken, why),
  });
  const onAcceptError = (error: Error) =>
    log.error(`cannot accept connections: ${error.message} (raise the open-file limit?)`);
  const spares = new Spares(open, rendezvous);
  const admission = new Admission({
    registry,
    rendezvous,
    spares,
    access,
    limits: () => config.limits,
    load: (session, service) =>
      rendezvous.countFor(session.id) + live.count(service, session.agentId),
  });

  const { domain, http, proxy, trustedProxies } = options;
  const names = options.https?.agentNames ?? [];
  const https = options.https && {
    ...options.https,
    agents: names.length ? { names, port: () => agentPort.address } : undefined,
  };
  const fronts = await openFronts({
    ports: { pinned, listenHost: options.listen.hostname, portRange: options.portRange },
    domain,
    http,
    https,
    proxy,
    trustedProxies,
  }, { arrive: (arrival) => admission.arrive(arrival), onAcceptError });
  let agentPort: AgentPort;
  const httpsFront = fronts.find((front) => front instanceof HttpsFront);
  const sessions = new Sessions({
    policy,
    sharedKey: options.secret === undefined ? undefined : secretKey(options.secret),
    heartbeatMs: options.heartbeatMs ?? HEARTBEAT_INTERVAL_MS,
    publication: new Publication(registry, fronts),
    rendezvous,
    spares,
    open,
    refuse: (conn, why, reason) => agentPort.refuse(conn, why, reason),
  });
  try {
    agentPort = await AgentPort.open({
      transport: options.transport,
      address: options.listen,
      webSocketPath: options.webSocketPath ?? WEBSOCKET_PATH,
      agentOf: (conn) => httpsFront?.agentOf(conn),
      limits: () => config.limits,
      open,
      onAcceptError,
    }, {
      control: (conn, reader, hello, authenticated) =>
        sessions.run(conn, reader, hello, authenticated),
      ...dataChannelHandlers({
        rendezvous,
        sessions,
        spares,
        limits: () => config.limits,
        refuse: (conn, why, reason) => agentPort.refuse(conn, why, reason),
      }),
    });
  } catch (error) {
    fronts.forEach((front) => front.close());
    throw new Error(
      `cannot listen for agents on ${formatHostPort(options.listen)}: ${(error as Error).message}`,
    );
  }
  log.info(`listening for agents on ${formatHostPort(agentPort.address)}`);
  for (const [id, at] of pinned) log.info(`service ${id} pinned to ${formatHostPort(at)}`);

  /** Closes the listeners and every agent session; client and data connections stay. */
  function stopAccepting(reason: string): void {
    agentPort.close();
    fronts.forEach((front) => front.close());
    sessions.endAll(reason);
  }

  const startedAt = Date.now();
  const reported: ReportedParts = {
    sessions: () => sessions.all(),
    live,
    admission,
    failedHandshakes: () => agentPort.failedHandshakes,
    members: (service) => registry.members(service),
    counts: () => ({
      pending: rendezvous.size,
      spares: spares.count(),
      connections: open.size,
      unauthenticated: agentPort.unauthenticated,
    }),
  };
  return {
    address: agentPort.address,
    status: () => relayStatus(reported, startedAt),
    metrics: () => formatMetrics(relayMetrics(reported)),
    extra: serviceHealthRoute(reported.members),
    stats: () => ({
      agents: sessions.size,
      services: sessions.serviceCount,
      pending: rendezvous.size,
      spares: spares.count(),
      connections: open.size,
      unauthenticated: agentPort.unauthenticated,
      refusedClients: admission.refused,
      fronts: fronts.map((front) => front.name).join(","),
    }),
    setHttpsCertificates(certificates) {
      const files = new CertificateFiles(certificates);
      for (const front of fronts) if (front instanceof HttpsFront) front.setCertificates(files);
    },
    reload(next) {
      config = next;
      access.setRules(next.services);
      sessions.reload();
      log.info("configuration reloaded");
    },
    close() {
      stopAccepting("the relay is stopping");
      open.releaseAll();
    },
    async shutdown(timeoutMs) {
      stopAccepting("the relay is shutting down");
      await drain(open, timeoutMs, log);
    },
  };
}
