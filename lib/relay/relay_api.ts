/**
 * What a relay is started with (`startRelay` in lib/relay/relay.ts) and what a running relay
 * offers its entry script, its admin API and tests.
 */

import type { FrontsOptions } from "../front/fronts.ts";
import type { HostPort, PortRange } from "../address.ts";
import type { CertifiedKey } from "../transport/certificate.ts";
import type { AgentTransport } from "../transport/transport.ts";
import type { RelayConfig } from "./config.ts";
import type { relayStatus } from "./report.ts";

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
   * Stops taking clients, lets the clients held for a data channel get theirs, then stops
   * listening and ends every agent session; spliced connections get what is left of `timeoutMs`
   * to finish, then the rest are closed.
   */
  shutdown(timeoutMs: number): Promise<void>;
}
