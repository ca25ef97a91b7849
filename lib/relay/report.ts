/**
 * What the relay tells its operator through the admin API (lib/admin/server.ts): the `/status`
 * document (agents, services, connections) and the `/metrics` families, read from the relay's
 * parts at the moment of the request.
 */

import { gauge, type MetricFamily } from "../admin/metrics.ts";
import type { Admission } from "./admission.ts";
import type { LiveConnections } from "../admin/live.ts";
import type { AgentSession } from "./sessions.ts";
import type { MemberState } from "./registry.ts";

/** The parts of a relay a report reads. */
export interface ReportedParts {
  sessions: () => AgentSession[];
  live: LiveConnections;
  admission: Admission;
  /** Agent connections whose handshake failed, by why. */
  failedHandshakes: () => ReadonlyMap<string, number>;
  /** Clients waiting for a data channel, spare data channels, and all open connections. */
  counts: () => { pending: number; spares: number; connections: number; unauthenticated: number };
  /** The agents serving a service, and their state. */
  members: (service: string) => MemberState<AgentSession>[];
}

/** Each online service, once, with its members' state and share of the clients given. */
function servicesOf(parts: ReportedParts) {
  const seen = new Map<string, { kind: string; addresses: readonly string[] }>();
  for (const session of parts.sessions()) {
    for (const [id, published] of session.published) if (!seen.has(id)) seen.set(id, published);
  }
  return [...seen].map(([id, { kind, addresses }]) => {
    const members = parts.members(id);
    const total = members.reduce((sum, { served }) => sum + served, 0);
    return {
      id,
      kind,
      addresses,
      agents: members.map(({ member, healthy, paused, served }) => ({
        id: member.agentId,
        healthy,
        paused,
        connections: served,
        share: total ? Math.round(served / total * 1000) / 1000 : 0,
      })),
    };
  });
}

/** `/status`: the relay, its agents, their services, and the connections spliced now. */
export function relayStatus(parts: ReportedParts, startedAt: number) {
  const now = Date.now();
  const sessions = parts.sessions();
  return {
    relay: { uptime_s: Math.round((now - startedAt) / 1000), ...parts.counts() },
    agents: sessions.map((session) => ({
      id: session.agentId,
      address: session.address,
      connected_s: Math.round((now - session.since) / 1000),
      services: [...session.services],
    })),
    services: servicesOf(parts),
    connections: parts.live.list(),
  };
}

/** `/metrics`: agents, services, connections, bytes, refusals, set-up time, memory. */
export function relayMetrics(parts: ReportedParts): MetricFamily[] {
  const sessions = parts.sessions();
  const counts = parts.counts();
  return [
    gauge("porthole_agents", "Agents connected.", sessions.length),
    gauge(
      "porthole_services",
      "Services online.",
      sessions.reduce((sum, session) => sum + session.services.size, 0),
    ),
    gauge("porthole_pending_connections", "Clients waiting for a data channel.", counts.pending),
    gauge("porthole_spare_data_channels", "Spare data channels kept for agents.", counts.spares),
    gauge("porthole_open_connections", "Connections open, of every kind.", counts.connections),
    gauge(
      "porthole_unauthenticated_connections",
      "Agent connections still in their handshake.",
      counts.unauthenticated,
    ),
    ...parts.live.metrics(),
    ...memberMetrics(parts),
    {
      name: "porthole_refused_clients_total",
      help: "Clients turned away, by reason (offline, unhealthy, pending, access, visitor).",
      type: "counter",
      samples: [...parts.admission.refusedBy].map(([reason, value]) => ({
        labels: { reason },
        value,
      })),
    },
    {
      name: "porthole_failed_handshakes_total",
      help: "Agent connections whose handshake failed, by reason (protocol, version, " +
        "authentication, connection id, limit, busy, failed).",
      type: "counter",
      samples: [...parts.failedHandshakes()].map(([reason, value]) => ({
        labels: { reason },
        value,
      })),
    },
    gauge("process_resident_memory_bytes", "Resident memory of the relay.", Deno.memoryUsage().rss),
  ];
}

/** Per service and agent serving it: clients given, and whether it passes its health checks. */
function memberMetrics(parts: ReportedParts): MetricFamily[] {
  const services = servicesOf(parts);
  const each = (value: (agent: (typeof services)[number]["agents"][number]) => number) =>
    services.flatMap(({ id, agents }) =>
      agents.map((agent) => ({ labels: { service: id, agent: agent.id }, value: value(agent) }))
    );
  return [
    {
      name: "porthole_service_agent_connections_total",
      help: "Clients given to each agent serving a service, while it serves it.",
      type: "counter",
      samples: each((agent) => agent.connections),
    },
    {
      name: "porthole_service_agent_healthy",
      help: "1 while the agent's health checks of the service pass (or it has none).",
      type: "gauge",
      samples: each((agent) => agent.healthy ? 1 : 0),
    },
  ];
}
