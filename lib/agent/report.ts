/**
 * What the agent tells its operator through the admin API (lib/admin/server.ts): the `/status`
 * document (the relay, the services, the connections) and the `/metrics` families.
 */

import type { LiveConnections } from "../admin/live.ts";
import { gauge, type MetricFamily } from "../admin/metrics.ts";
import { formatHostPort } from "../address.ts";
import type { AgentStats } from "./agent.ts";
import type { AgentService } from "./serve.ts";

/** The parts of an agent a report reads. */
export interface ReportedAgent {
  id: string;
  services: ReadonlyMap<string, AgentService>;
  /** The services the relay brought online, with their public addresses. */
  published: ReadonlyMap<string, readonly string[]>;
  live: LiveConnections;
  stats(): AgentStats;
}

/** `/status`: the agent, its relay and path, its services (online or not), its connections. */
export function agentStatus(agent: ReportedAgent, startedAt: number) {
  return {
    agent: {
      id: agent.id,
      uptime_s: Math.round((Date.now() - startedAt) / 1000),
      ...agent.stats(),
    },
    services: [...agent.services].map(([id, service]) => ({
      id,
      target: formatHostPort(service.target),
      kind: service.kind ?? "tcp",
      online: agent.published.has(id),
      addresses: agent.published.get(id) ?? [],
    })),
    connections: agent.live.list(),
  };
}

/** `/metrics`: whether the relay is connected, spares, connections, bytes, memory. */
export function agentMetrics(agent: ReportedAgent): MetricFamily[] {
  const stats = agent.stats();
  return [
    gauge(
      "porthole_relay_connected",
      "1 while the control channel to the relay is up.",
      stats.relay === "connected" ? 1 : 0,
    ),
    gauge("porthole_services_online", "Services the relay has online.", agent.published.size),
    gauge("porthole_spare_data_channels", "Spare data channels open and waiting.", stats.spares),
    gauge("porthole_open_connections", "Service and data connections open.", stats.connections),
    ...agent.live.metrics(),
    gauge("process_resident_memory_bytes", "Resident memory of the agent.", Deno.memoryUsage().rss),
  ];
}
