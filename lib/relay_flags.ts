/** The relay's flags and its --help, from one table (see lib/flags.ts). */

import { WEBSOCKET_PATH } from "./transport/websocket.ts";
import { adminFlags, RELAY_ADMIN_ADDRESS } from "./admin/flags.ts";
import { COMMON_FLAGS, VERSION } from "./cli.ts";
import { flagHelp, type FlagTable } from "./flags.ts";
import { HEARTBEAT_INTERVAL_MS } from "./protocol.ts";
import { CONNECT_TIMEOUT_MS } from "./relay/rendezvous.ts";

/** Every flag of `relay`, in --help order. */
export const RELAY_FLAGS = {
  listen: {
    value: "HOST:PORT",
    default: "0.0.0.0:7835",
    help: "Where agents dial; control and data channels share this port. Agents may also " +
      "come as WebSocket upgrades here (wss://, or ws:// with --insecure): listen on 443 for " +
      "networks that pass only HTTPS.",
    example: "--listen [::]:7835",
  },
  "websocket-path": {
    value: "PATH",
    default: WEBSOCKET_PATH,
    help: "The path of agents' WebSocket upgrades on the agent port; other requests get 404.",
  },
  ...adminFlags(RELAY_ADMIN_ADDRESS),
  health: {
    value: "HOST:PORT",
    help: "Where a load balancer may check the relay with no token: GET /healthz, and " +
      "/healthz/SERVICE (200 while an agent here serves SERVICE and passes its checks, 503 " +
      "otherwise); nothing else is served there.",
    example: "--health 0.0.0.0:7838",
  },
  "secret-file": {
    value: "FILE",
    help: "File holding the secret agents must prove they know (or set the PORTHOLE_SECRET " +
      "environment variable). At least 16 characters; make one with: openssl rand -hex 32 > secret",
  },
  config: {
    value: "FILE",
    help: "TOML file: agents with their own secrets and the service ids and ports each may " +
      'claim, client access rules per service, limits. Re-read on SIGHUP (see README, "Relay ' +
      'configuration").',
  },
  expose: {
    value: "ID=HOST:PORT",
    repeats: true,
    help: "Pin service ID to a public address (repeatable). Clients of a pinned service whose " +
      "agent is offline are closed at once.",
    example: "--expose web=0.0.0.0:8080",
  },
  cert: {
    value: "FILE",
    help: "Certificate (PEM, full chain) and key for the agent port, e.g. from your CA or Let's " +
      "Encrypt; agents then need no extra flag. Without them the relay makes a self-signed " +
      "certificate on first start, keeps it in --state-dir, and prints its fingerprint for the " +
      "agents' --fingerprint.",
  },
  key: { value: "FILE" },
  "state-dir": {
    value: "DIR",
    defaultText: "$XDG_STATE_HOME/porthole or ~/.local/state/porthole",
    help: "Where the generated certificate and key (mode 0600) live.",
  },
  insecure: {
    help: "Plain TCP between agents and relay: no encryption. Only for tests or a network you " +
      "trust; agents must use --insecure too.",
  },
  "port-range": {
    value: "FIRST-LAST",
    default: "20000-20999",
    help: "Ports for services that are not pinned, bound on the --listen host.",
  },
  "connect-timeout": {
    value: "SECS",
    default: String(CONNECT_TIMEOUT_MS / 1000),
    help: "How long a client is held while its agent opens the data channel; the one-time " +
      "connection id expires then.",
  },
  heartbeat: {
    value: "SECS",
    default: String(HEARTBEAT_INTERVAL_MS / 1000),
    help: "Interval of heartbeats on control channels; an agent silent for three intervals is " +
      "dropped (and it drops a silent relay alike).",
  },
  http: {
    value: "HOST:PORT",
    help: "Serve HTTP services (an agent's --service ID=http://HOST:PORT) on this one port, " +
      "routed by the Host header: service ID answers at ID.DOMAIN. Needs --domain.",
    example: "--http 0.0.0.0:80",
  },
  https: {
    value: "HOST:PORT",
    help: "Serve TLS on this one port, routed by the server name (SNI): a tls:// service's TLS " +
      "passes through untouched; any other ID.DOMAIN is terminated with --https-cert and routed " +
      "by Host like --http. Needs --domain.",
    example: "--https 0.0.0.0:443",
  },
  "https-cert": {
    value: "FILE",
    repeats: true,
    help: "Certificate (PEM, full chain) and key the HTTPS front terminates with (repeatable, in " +
      "pairs): each covers the names of its subjectAltName, e.g. a wildcard for *.DOMAIN; " +
      "re-read on SIGHUP.",
  },
  "https-key": { value: "FILE", repeats: true },
  "https-agents": {
    value: "NAME",
    repeats: true,
    help: "Agents whose TLS server name is NAME (the relay's own, e.g. relay.example.com) may " +
      "share the --https port with browsers: they are handed on to the agent port, whose " +
      "certificate answers them (repeatable). For networks that pass only port 443.",
    example: "--https-agents relay.example.com",
  },
  domain: {
    value: "NAME",
    help: "The domain whose names the HTTP and HTTPS fronts route: ID.NAME reaches service ID " +
      "(point a wildcard DNS record *.NAME at the relay).",
    example: "--domain tunnel.example.com",
  },
  proxy: {
    value: "HOST:PORT",
    help: "Serve SOCKS5 and HTTP CONNECT clients on this port: the target host is a service's id " +
      "(or ID.DOMAIN), any port; nothing else is reachable through it.",
    example: "--proxy 0.0.0.0:1080",
  },
  "proxy-protocol-from": {
    value: "CIDR",
    repeats: true,
    help: "Take the real client's address from the PROXY protocol header (v1 or v2) of " +
      "connections to the public ports from these addresses: a load balancer in front of the " +
      "relay (HAProxy's send-proxy). Their connections must carry one; others' are not read.",
    example: "--proxy-protocol-from 10.0.0.0/8",
  },
  ...COMMON_FLAGS,
} as const satisfies FlagTable;

/** What `relay --help` prints. */
export const RELAY_HELP = `porthole relay ${VERSION}: the public end of a porthole tunnel.

Agents inside private networks dial this relay; clients on the internet then reach their
services through it.

Usage: relay [flags]
       relay status [--admin HOST:PORT] [--admin-token-file FILE]
         (prints the running relay's agents, services and connections, from its admin API)

Flags:
${flagHelp(RELAY_FLAGS)}
Signals: SIGINT/SIGTERM stop gracefully (exit 0); SIGUSR2 logs a status line with the number
of agents, services, waiting clients and open connections, and the memory in use.

Example:
  relay --listen 0.0.0.0:7835 --secret-file /etc/porthole/secret --expose web=0.0.0.0:8080
`;
