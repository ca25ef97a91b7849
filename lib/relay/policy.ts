/**
 * Registration policy (S3–S4 in docs/flow.md): which service ids and public ports an agent may
 * claim, by its `[agents]` entry in the relay's config, the relay's `--port-range` and the
 * per-agent service limit.
 */

import { portAllowed, type RelayConfig } from "./config.ts";
import type { PortRange } from "../address.ts";

/** True if `name` is `allowed`, or under it when `allowed` is `*.example.com`. */
export function hostMatches(name: string, allowed: string): boolean {
  const host = name.toLowerCase();
  return allowed.startsWith("*.") ? host.endsWith(allowed.slice(1)) : host === allowed;
}

/** What the policy is applied with, besides the configuration. */
export interface PolicyContext {
  config: RelayConfig;
  /** Service ids pinned to public addresses (`--expose`): their port is the relay's choice. */
  pinned: ReadonlyMap<string, unknown>;
  /** Ports for services that are not pinned, for agents without an `[agents]` entry. */
  portRange?: PortRange;
}

/** An agent asking to serve a service: who it is and what it already serves. */
export interface Claimant {
  agentId: string;
  services: ReadonlySet<string>;
}

/**
 * Why `agent` may not serve `service` (on public `port`, under the custom host names `hosts`),
 * or undefined if it may.
 *
 * @example
 * ```ts
 * import { EMPTY_CONFIG } from "./config.ts";
 * const problem = registrationProblem(
 *   { config: EMPTY_CONFIG, pinned: new Map(), portRange: { first: 20000, last: 20999 } },
 *   { agentId: "office", services: new Set() },
 *   "web",
 *   8080,
 * );
 * // "agent office may not claim public port 8080 (outside --port-range)"
 * ```
 */
export function registrationProblem(
  { config, pinned, portRange }: PolicyContext,
  agent: Claimant,
  service: string,
  port: number | undefined,
  hosts: readonly string[] = [],
): string | undefined {
  const entry = config.agents?.get(agent.agentId);
  const host = hosts.find((name) =>
    !(entry?.hosts ?? []).some((allowed) => hostMatches(name, allowed))
  );
  if (host !== undefined) {
    return `agent ${agent.agentId} may not claim host name ${host} ` +
      (entry ? "(see hosts in its [agents] entry)" : "(list the agent under [agents] with hosts)");
  }
  if (entry?.services && !entry.services.has(service)) {
    return `agent ${agent.agentId} may not serve ${service} (see services in its [agents] entry)`;
  }
  const limit = config.limits.maxServicesPerAgent;
  if (!agent.services.has(service) && agent.services.size >= limit) {
    return `agent ${agent.agentId} already serves ${limit} services (limits.max_services_per_agent)`;
  }
  if (port === undefined || pinned.has(service)) return undefined;
  const allowed = entry ? entry.ports : portRange ? [portRange] : [];
  if (!portAllowed(port, allowed)) {
    return `agent ${agent.agentId} may not claim public port ${port} ` +
      (entry ? "(see ports in its [agents] entry)" : "(outside --port-range)");
  }
  return undefined;
}
