/**
 * `agent status` and `agent service add|rm|ls`: a running agent, asked and changed through its
 * admin API (lib/admin/server.ts, lib/agent/admin_services.ts), at `--admin` (127.0.0.1:7837 by
 * default) with `--admin-token-file` if it needs one.
 */

import { adminEndpoint, type AdminFlagValues, AGENT_ADMIN_ADDRESS } from "../admin/flags.ts";
import { bytes, duration, fetchAdmin, table } from "../admin/status_table.ts";
import { UsageError } from "../cli.ts";
import { applyHostNames, applyProxyProtocol, parseAgentServices } from "./service_flags.ts";
import type { agentStatus } from "./report.ts";
import { bodyOf, type ServiceBody } from "./admin_services.ts";
import type { ServiceChanges } from "./live_services.ts";

/** What the commands read of the agent's flags. */
export interface AdminFlags extends AdminFlagValues {
  host: string[];
  "proxy-protocol": string[];
}

/** The usage of the commands, for --help. */
export const ADMIN_COMMANDS_HELP =
  `       agent status                  what the running agent is connected to and serves
       agent service ls              its services
       agent service add ID=HOST:PORT  (as --service takes it; --host, --proxy-protocol too)
       agent service rm ID           (each with --admin HOST:PORT and --admin-token-file FILE,
                                      or the --config FILE that has them)`;

/** Runs `agent <args>` (`status`, or `service` and its action); prints what it found or did. */
export async function runAdminCommand(args: string[], flags: AdminFlags): Promise<void> {
  const { address, token } = await adminEndpoint(flags, AGENT_ADMIN_ADDRESS);
  const ask = (path: string, request?: { method: string; body?: unknown }) =>
    fetchAdmin(address, path, token, request);
  const [command, action, operand] = args;
  if (command === "status") {
    return console.log(statusText(await ask("/status") as ReturnType<typeof agentStatus>));
  }
  if (action === "ls") {
    const services = await ask("/services") as Record<string, ServiceBody>;
    const rows = Object.entries(services).map(([id, s]) => [
      id,
      s.target,
      s.kind ?? "tcp",
      s.port === undefined ? "any" : String(s.port),
      (s.hosts ?? []).join(", "),
    ]);
    return console.log(
      table(["SERVICE", "TARGET", "KIND", "PORT", "HOSTS"], rows, "no service").join("\n"),
    );
  }
  if (action === "add" && operand) {
    const services = parseAgentServices([operand]);
    applyHostNames(services, flags.host);
    applyProxyProtocol(services, flags["proxy-protocol"]);
    const [[id, service]] = services;
    const body = bodyOf(service);
    return report(await ask(`/services/${id}`, { method: "PUT", body }) as ServiceChanges);
  }
  if (action === "rm" && operand) {
    return report(await ask(`/services/${operand}`, { method: "DELETE" }) as ServiceChanges);
  }
  throw new UsageError(`unknown command: agent ${args.join(" ")}\n${ADMIN_COMMANDS_HELP}`);
}

function report(changes: ServiceChanges): void {
  const said = Object.entries(changes).filter(([, ids]) => ids.length > 0)
    .map(([what, ids]) => `${what}: ${ids.join(", ")}`);
  console.log(said.length ? `services ${said.join("; ")}` : "nothing changed");
}

/** Whether its relay is connected, or how many of its relays are. */
function relayText({ relay, path, relays }: ReturnType<typeof agentStatus>["agent"]): string {
  if (relays.length === 1) return `relay ${relay}${path ? ` (${path})` : ""}`;
  return `${relays.filter((r) => r.connected).length} of ${relays.length} relays connected`;
}

function statusText(status: ReturnType<typeof agentStatus>): string {
  const { agent, services, connections } = status;
  const relays = agent.relays.length > 1
    ? [
      "",
      ...table(
        ["RELAY", "CONNECTED", "PATH"],
        agent.relays.map((r) => [
          r.relay,
          r.connected ? "yes" : r.refused ? "no: refused" : "no",
          r.path ?? "",
        ]),
        "no relay",
      ),
    ]
    : [];
  return [
    `agent ${agent.id}: ${relayText(agent)}, up ` +
    `${
      duration(agent.uptime_s)
    }; ${agent.connections} open connection(s), ${agent.spares} spare(s)`,
    ...relays,
    "",
    ...table(
      ["SERVICE", "TARGET", "KIND", "ONLINE", "PUBLIC ADDRESSES"],
      services.map((
        s,
      ) => [s.id, s.target, s.kind, s.online ? "yes" : "no", s.addresses.join(", ")]),
      "no service",
    ),
    "",
    ...table(
      ["SERVICE", "CLIENT", "FROM CLIENT", "TO CLIENT", "AGE"],
      connections.map((
        c,
      ) => [c.service, c.client, bytes(c.from_client), bytes(c.to_client), duration(c.age_s)]),
      "no client is connected",
    ),
  ].join("\n");
}
