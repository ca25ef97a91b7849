/**
 * `relay status`: reads the relay's `/status` from its admin API (lib/admin/server.ts) and prints
 * it as tables, what an operator checks first when a service is unreachable: is the agent
 * connected, is the service online and where, which clients are connected and what moved.
 */

import { describeError } from "../net.ts";
import { formatHostPort, type HostPort } from "../address.ts";
import type { relayStatus } from "../relay/report.ts";

/** The relay's `/status` document. */
export type RelayStatusDocument = ReturnType<typeof relayStatus>;

/** Time allowed for the admin API to answer. */
export const STATUS_TIMEOUT_MS = 5_000;

/**
 * Asks the admin API at `address` for `path` (a GET, or `request`'s method and JSON body); throws
 * saying what to check when it cannot, or with the API's own answer when it refuses.
 */
export async function fetchAdmin(
  address: HostPort,
  path: string,
  token?: string,
  request: { method: string; body?: unknown } = { method: "GET" },
): Promise<unknown> {
  const url = `http://${formatHostPort(address)}${path}`;
  let response: Response;
  try {
    response = await fetch(url, {
      method: request.method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(request.body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: request.body === undefined ? undefined : JSON.stringify(request.body),
      signal: AbortSignal.timeout(STATUS_TIMEOUT_MS),
    });
  } catch (error) {
    throw new Error(
      `cannot reach the admin API at ${url}: ${describeError(error)} (is the relay running, ` +
        "and is this its --admin address?)",
    );
  }
  if (response.status === 401) {
    await response.body?.cancel();
    throw new Error(`the admin API at ${url} wants its token: give --admin-token-file`);
  }
  if (!response.ok) {
    const said = (await response.text()).trim();
    throw new Error(`the admin API at ${url} answered ${response.status}: ${said}`);
  }
  return await response.json();
}

/** An agent serving a service, as the services table shows it. */
function memberText(agent: RelayStatusDocument["services"][number]["agents"][number]): string {
  const state = !agent.healthy ? " failing health checks" : agent.paused ? " passed over" : "";
  return `${agent.id} ${Math.round(agent.share * 100)}%${state}`;
}

/** The status as a few readable tables. */
export function statusTable(status: RelayStatusDocument): string {
  const { relay, agents, services, connections } = status;
  const lines = [
    `relay: up ${duration(relay.uptime_s)}; ${agents.length} agent(s), ${services.length} ` +
    `service(s), ${connections.length} connection(s), ${relay.pending} waiting for a data ` +
    `channel, ${relay.spares} spare data channel(s)`,
    "",
    ...table(
      ["AGENT", "FROM", "CONNECTED", "SERVICES"],
      agents.map((agent) => [
        agent.id,
        agent.address,
        duration(agent.connected_s),
        agent.services.join(", ") || "none",
      ]),
      "no agent is connected",
    ),
    "",
    ...table(
      ["SERVICE", "KIND", "AGENTS (SHARE OF CLIENTS)", "PUBLIC ADDRESSES"],
      services.map((service) => [
        service.id,
        service.kind,
        service.agents.map(memberText).join(", "),
        service.addresses.join(", "),
      ]),
      "no service is online",
    ),
    "",
    ...table(
      ["SERVICE", "CLIENT", "AGENT", "FROM CLIENT", "TO CLIENT", "AGE"],
      connections.map((conn) => [
        conn.service,
        conn.client,
        conn.agent,
        bytes(conn.from_client),
        bytes(conn.to_client),
        duration(conn.age_s),
      ]),
      "no client is connected",
    ),
  ];
  return lines.join("\n") + "\n";
}

export function table(header: string[], rows: string[][], none: string): string[] {
  if (rows.length === 0) return [none];
  const widths = header.map((title, i) =>
    Math.max(title.length, ...rows.map((row) => row[i].length))
  );
  return [header, ...rows].map((row) =>
    row.map((cell, i) => cell.padEnd(widths[i])).join("  ").trimEnd()
  );
}

/** Seconds as `1h02m`, `3m12s` or `42s`. */
export function duration(seconds: number): string {
  const s = Math.floor(seconds);
  if (s >= 3600) {
    return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, "0")}m`;
  }
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}

/** A byte count as `812 B`, `4.0 KiB`, `1.5 MiB`. */
export function bytes(count: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = count, unit = 0;
  while (value >= 1024 && unit < units.length - 1) value /= 1024, unit++;
  return unit === 0 ? `${count} B` : `${value.toFixed(1)} ${units[unit]}`;
}
