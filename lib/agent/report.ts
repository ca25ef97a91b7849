/**
 * What the agent tells its operator through the admin API (lib/admin/server.ts): the `/status`
 * document (the relay, the services, the connections) and the `/metrics` families.
 */

import type { LiveConnections } from "../admin/live.ts";
import { gauge, type MetricFamily } from "../admin/metrics.ts";
import { formatHostPort } from "../address.ts";
import type { AgentStats } from "./agent.ts";
import type { RelayLink } from "./relay_link.ts";
import type { AgentService } from "./serve.ts";

/** The parts of an agent a report reads. */
export interface ReportedAgent {
  id: string;
  services: ReadonlyMap<string, AgentService>;
  /** Its relays, each with the services it brought online and their public addresses. */
  links: readonly RelayLink[];
  live: LiveConnections;
  stats(): AgentStats;
}

/** `/status`: the agent, its relays and paths, its services (online or not), its connections. */
export function agentStatus(agent: ReportedAgent, startedAt: number) {
  const addresses = (id: string) => agent.links.flatMap((link) => link.published.get(id) ?? []);
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
      online: agent.links.some((link) => link.published.has(id)),
      addresses: addresses(id),
    })),
    connections: agent.live.list(),
  };
}

/** `/metrics`: whether each relay is connected, spares, connections, bytes, memory. */
export function agentMetrics(agent: ReportedAgent): MetricFamily[] {
  const stats = agent.stats();
  const online = new Set(agent.links.flatMap((link) => [...link.published.keys()]));
  return [
    {
      name: "porthole_relay_connected",
      help: "1 while the control channel to the relay is up.",
      type: "gauge",
      samples: agent.links.map((link) => ({
        labels: { relay: link.name },
        value: link.connected ? 1 : 0,
      })),
    },
    gauge("porthole_services_online", "Services a relay has online.", online.size),
    gauge("porthole_spare_data_channels", "Spare data channels open and waiting.", stats.spares),
    gauge("porthole_open_connections", "Service and data connections open.", stats.connections),
    ...agent.live.metrics(),
    gauge("process_resident_memory_bytes", "Resident memory of the agent.", Deno.memoryUsage().rss),
  ];
}
