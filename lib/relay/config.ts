/**
 * The relay's configuration file (`--config FILE`, TOML): which agents may connect with which
 * secret, which service ids and public ports each may claim, who may reach each service, and the
 * limits on what strangers can make the relay hold. Read at start and again on SIGHUP.
 *
 * @example
 * ```toml
 * [agents.office]
 * secret_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
 * services = ["web", "db"]          # ids it may register ("*": any)
 * ports = [8080, "20000-20010"]     # public ports it may ask for
 *
 * [services.web]
 * allow = ["203.0.113.0/24", "2001:db8::/32"]
 * deny = ["203.0.113.66/32"]
 * max_connections = 500
 * max_connections_per_client = 20
 * max_new_per_second_per_client = 10
 * group = true                      # several agents may serve it at once
 * balance = "least-connections"     # or "round-robin" (the default)
 *
 * [limits]
 * handshake_timeout = 10            # seconds
 * ```
 */

import type ipaddr from "ipaddr.js";
import { keyFromHex, secretKey } from "../auth.ts";
import { HANDSHAKE_TIMEOUT_MS } from "../protocol.ts";
import type { PortRange } from "../address.ts";
import { readConfigText, type Table, TomlFile } from "../toml.ts";
import { parseGroup, parsePorts, parseVisitors } from "./config_values.ts";
import type { Balance } from "./registry.ts";

/** Default for `limits.max_pending_per_agent`: clients waiting for one agent's data channels. */
export const MAX_PENDING_PER_AGENT = 1_000;
/** Default for `limits.max_services_per_agent`. */
export const MAX_SERVICES_PER_AGENT = 64;
/** Default for `limits.max_unauthenticated`: agent-port connections still in their handshake. */
export const MAX_UNAUTHENTICATED = 1_024;
/**
 * Default for `limits.max_spares_per_agent`: spare data channels the relay keeps for one agent
 * (lib/relay/spares.ts); 0 turns them off.
 */
export const MAX_SPARES_PER_AGENT = 8;

/** An agent the relay knows, from an `[agents.ID]` table. */
export interface AgentEntry {
  /** The HMAC key (SHA-256 of the agent's secret). */
  key: Uint8Array;
  /** Service ids it may register; undefined for any. */
  services?: Set<string>;
  /** Public ports it may ask for. */
  ports: PortRange[];
  /** Host names it may claim for its services besides `ID.DOMAIN` (`*.example.com` patterns). */
  hosts: string[];
}

/** Who may reach a service, from a `[services.ID]` table (`"*"`: services without their own). */
export interface AccessRule {
  /** Parses a client's address (with ipaddr.js, which is loaded only for a file). */
  parseAddress: (hostname: string) => ipaddr.IPv4 | ipaddr.IPv6;
  allow: [ipaddr.IPv4 | ipaddr.IPv6, number][];
  deny: [ipaddr.IPv4 | ipaddr.IPv6, number][];
  maxConnections?: number;
  maxConnectionsPerClient?: number;
  maxNewPerSecondPerClient?: number;
  /** `basic_auth`: user → bcrypt hash; when given, only clients with one of them get through. */
  visitors?: Map<string, string>;
  /** `group = true`: several agents may serve it at once, new clients spread by `balance`. */
  group?: { balance: Balance };
}

/** Limits on what the relay holds for strangers and agents. */
export interface Limits {
  handshakeTimeoutMs: number;
  maxUnauthenticated: number;
  maxPendingPerAgent: number;
  maxServicesPerAgent: number;
  maxSparesPerAgent: number;
}

/** The whole file, checked. */
export interface RelayConfig {
  /** Known agents; undefined when the file has none (any agent with the shared secret). */
  agents?: Map<string, AgentEntry>;
  services: Map<string, AccessRule>;
  limits: Limits;
}

/** The limits when no file sets them. */
export const DEFAULT_LIMITS: Limits = {
  handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
  maxUnauthenticated: MAX_UNAUTHENTICATED,
  maxPendingPerAgent: MAX_PENDING_PER_AGENT,
  maxServicesPerAgent: MAX_SERVICES_PER_AGENT,
  maxSparesPerAgent: MAX_SPARES_PER_AGENT,
};

/** The configuration without a file. */
export const EMPTY_CONFIG: RelayConfig = { services: new Map(), limits: DEFAULT_LIMITS };

/** Reads and checks a configuration file; throws naming the file and the offending key. */
export async function loadRelayConfig(path: string): Promise<RelayConfig> {
  return parseRelayConfig(await readConfigText(path), path);
}

/** Parses and checks the TOML text of a configuration file. */
export async function parseRelayConfig(text: string, source: string): Promise<RelayConfig> {
  // Loaded only now: a relay without a file never needs them, and at start they would cost it
  // ~2 MiB of memory (ipaddr.js, being CommonJS, brings Deno's Node.js module loader with it).
  const [file, { default: ipaddr }] = await Promise.all([
    TomlFile.parse(text, source),
    import("ipaddr.js"),
  ]);
  const fail = file.fail.bind(file);
  const table = file.table.bind(file);
  const count = file.count.bind(file);
  const strings = file.strings.bind(file);

  const root = table(file.document, "the file", ["agents", "services", "limits"]);
  const config: RelayConfig = { services: new Map(), limits: { ...DEFAULT_LIMITS } };

  if (root.agents !== undefined) {
    config.agents = new Map();
    for (
      const [id, value] of Object.entries(
        table(root.agents, "agents", Object.keys(root.agents as Table)),
      )
    ) {
      const key = `agents.${id}`;
      const entry = table(value, key, ["secret", "secret_sha256", "services", "ports", "hosts"]);
      if ((entry.secret === undefined) === (entry.secret_sha256 === undefined)) {
        fail(key, 'needs exactly one of secret = "…" or secret_sha256 = "<64 hex digits>"');
      }
      let hmacKey: Uint8Array;
      if (entry.secret !== undefined) {
        if (typeof entry.secret !== "string" || entry.secret.length < 16) {
          fail(`${key}.secret`, "must be a string of at least 16 characters");
        }
        hmacKey = secretKey(entry.secret as string);
      } else {
        const hex = entry.secret_sha256;
        if (typeof hex !== "string" || !/^[0-9a-f]{64}$/i.test(hex)) {
          fail(`${key}.secret_sha256`, "must be 64 hex digits (sha256sum of the secret)");
        }
        hmacKey = keyFromHex(hex as string);
      }
      const services = entry.services === undefined
        ? []
        : strings(entry.services, `${key}.services`);
      config.agents.set(id, {
        key: hmacKey,
        services: services.includes("*") ? undefined : new Set(services),
        ports: parsePorts(entry.ports, `${key}.ports`, fail),
        hosts: entry.hosts === undefined
          ? []
          : strings(entry.hosts, `${key}.hosts`).map((host) => host.toLowerCase()),
      });
    }
  }

  if (root.services !== undefined) {
    for (
      const [id, value] of Object.entries(
        table(root.services, "services", Object.keys(root.services as Table)),
      )
    ) {
      const key = `services.${id}`;
      const rule = table(value, key, [
        "allow",
        "deny",
        "max_connections",
        "max_connections_per_client",
        "max_new_per_second_per_client",
        "basic_auth",
        "group",
        "balance",
      ]);
      const cidrs = (name: string) =>
        (rule[name] === undefined ? [] : strings(rule[name], `${key}.${name}`)).map((cidr) => {
          try {
            return ipaddr.parseCIDR(cidr);
          } catch {
            return fail(
              `${key}.${name}`,
              `has "${cidr}", which is not an address range like 10.0.0.0/8 or 2001:db8::/32`,
            );
          }
        });
      config.services.set(id, {
        parseAddress: (hostname) => ipaddr.process(hostname),
        allow: cidrs("allow"),
        deny: cidrs("deny"),
        maxConnections: count(rule.max_connections, `${key}.max_connections`),
        maxConnectionsPerClient: count(
          rule.max_connections_per_client,
          `${key}.max_connections_per_client`,
        ),
        maxNewPerSecondPerClient: count(
          rule.max_new_per_second_per_client,
          `${key}.max_new_per_second_per_client`,
        ),
        visitors: rule.basic_auth === undefined
          ? undefined
          : parseVisitors(strings(rule.basic_auth, `${key}.basic_auth`), `${key}.basic_auth`, fail),
        group: parseGroup(rule.group, rule.balance, key, fail),
      });
    }
  }

  if (root.limits !== undefined) {
    const limits = table(root.limits, "limits", [
      "handshake_timeout",
      "max_unauthenticated",
      "max_pending_per_agent",
      "max_services_per_agent",
      "max_spares_per_agent",
    ]);
    const seconds = limits.handshake_timeout;
    if (seconds !== undefined) {
      if (!(typeof seconds === "number" && seconds > 0)) {
        fail("limits.handshake_timeout", "must be a positive number of seconds");
      }
      config.limits.handshakeTimeoutMs = Math.round((seconds as number) * 1000);
    }
    config.limits.maxUnauthenticated =
      count(limits.max_unauthenticated, "limits.max_unauthenticated") ??
        MAX_UNAUTHENTICATED;
    config.limits.maxPendingPerAgent =
      count(limits.max_pending_per_agent, "limits.max_pending_per_agent") ??
        MAX_PENDING_PER_AGENT;
    config.limits.maxServicesPerAgent =
      count(limits.max_services_per_agent, "limits.max_services_per_agent") ??
        MAX_SERVICES_PER_AGENT;
    const spares = limits.max_spares_per_agent;
    config.limits.maxSparesPerAgent = spares === 0
      ? 0
      : count(spares, "limits.max_spares_per_agent") ?? MAX_SPARES_PER_AGENT;
  }
  return config;
}

/** True if `port` lies in one of `ranges`. */
export function portAllowed(port: number, ranges: PortRange[]): boolean {
  return ranges.some((range) => range.first <= port && port <= range.last);
}
