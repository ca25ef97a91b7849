/**
 * What the relay tells its operator through the admin API (lib/admin/server.ts): the `/status`
 * document (agents, services, connections) and the `/metrics` families, read from the relay's
 * parts at the moment of the request.
 */

import { gauge, type MetricFamily } from "../admin/metrics.ts";
import type { Admission } from "./admission.ts";
import type { LiveConnections } from "../admin/live.ts";
import type { AgentSession } from "./sessions.ts";

/** The parts of a relay a report reads. */
export interface ReportedParts {
  sessions: () => AgentSession[];
  live: LiveConnections;
  admission: Admission;
  /** Agent connections whose handshake failed, by why. */
  failedHandshakes: () => ReadonlyMap<string, number>;
  /** Clients waiting for a data channel, spare data channels, and all open connections. */
  counts: () => { pending: number; spares: number; connections: number; unauthenticated: number };
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
    services: sessions.flatMap((session) =>
      [...session.published].map(([id, { kind, addresses }]) => ({
        id,
        kind,
        addresses,
        agent: session.agentId,
      }))
    ),
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
    {
      name: "porthole_refused_clients_total",
      help: "Clients turned away, by reason (offline, pending, access, visitor).",
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
