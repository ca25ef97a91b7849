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
import { openFronts } from "../front/fronts.ts";
import { CertificateFiles } from "../front/certificates.ts";
import { HttpsFront } from "../front/https.ts";
import { createLogger } from "../log.ts";
import { formatHostPort, type HostPort } from "../address.ts";
import { HEARTBEAT_INTERVAL_MS } from "../protocol.ts";
import { WEBSOCKET_PATH } from "../transport/websocket.ts";
import { AccessControl } from "./access.ts";
import { Admission } from "./admission.ts";
import { AgentPort } from "./agent_port.ts";
import { EMPTY_CONFIG } from "./config.ts";
import { dataChannelHandlers } from "./data_channels.ts";
import { Publication } from "./publication.ts";
import { Registry } from "./registry.ts";
import { LiveConnections } from "../admin/live.ts";
import { serviceHealthRoute } from "./service_health.ts";
import { relayMetrics, relayStatus, type ReportedParts } from "./report.ts";
import type { Relay, RelayOptions } from "./relay_api.ts";
import { Rendezvous } from "./rendezvous.ts";
import { type AgentSession, Sessions } from "./sessions.ts";
import { Spares } from "./spares.ts";

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
  let draining = false; // shutting down: held clients get their data channels, nothing new comes
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
  const channels = dataChannelHandlers({
    rendezvous,
    sessions,
    spares,
    limits: () => config.limits,
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
      // Shutting down, a new agent or spare gets a plain close (the agent dials again later).
      control: async (conn, reader, hello, authenticated) =>
        draining ? open.release(conn) : await sessions.run(conn, reader, hello, authenticated),
      data: channels.data,
      spare: (conn, ...rest) => draining ? open.release(conn) : channels.spare(conn, ...rest),
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
    extra: serviceHealthRoute(reported.members, () => draining),
    stats: () => ({
      agents: sessions.size,
      services: sessions.serviceCount,
      ...reported.counts(),
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
      draining = true;
      fronts.forEach((front) => front.closeToClients ? front.closeToClients() : front.close());
      let left = timeoutMs; // what the held clients leave of it, to the spliced connections
      if (rendezvous.size > 0) {
        const started = performance.now();
        log.info(`waiting for the data channels of ${rendezvous.size} client(s) held`);
        await rendezvous.settled(timeoutMs);
        left = Math.max(0, timeoutMs - Math.round(performance.now() - started));
      }
      stopAccepting("the relay is shutting down");
      await drain(open, left, log);
    },
  };
}
