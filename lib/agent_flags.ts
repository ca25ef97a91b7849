/** The agent's flags and its --help, from one table (see lib/flags.ts). */

import { RECONNECT_MAX_MS, RECONNECT_MIN_MS } from "./agent/relay_link.ts";
import { PATH_RECHECK_MS } from "./agent/path_choice.ts";
import { RELAY_DNS_REFRESH_MS } from "./agent/relays_from_flags.ts";
import { DEFAULT_MAX_SPARES, DEFAULT_MIN_SPARES } from "./agent/spares.ts";
import { adminFlags, AGENT_ADMIN_ADDRESS } from "./admin/flags.ts";
import { ADMIN_COMMANDS_HELP } from "./agent/admin_cli.ts";
import { COMMON_FLAGS, EXIT_REFUSED, EXIT_USAGE, VERSION } from "./cli.ts";
import { flagHelp, type FlagTable } from "./flags.ts";
import { WEBSOCKET_PATH } from "./transport/websocket.ts";

/** Every flag of `agent`, in --help order. */
export const AGENT_FLAGS = {
  config: {
    value: "FILE",
    help: "TOML file with any of these flags as keys (secret_file = ..., early_data = ...) and " +
      "services as [services.ID] tables (target, kind, port, hosts, proxy_protocol); flags given " +
      "here win. On SIGHUP the services are read again and changed live. See examples/agent.toml.",
  },
  relay: {
    value: "ADDRESS",
    repeats: true,
    help: "The relay's agent port (required): HOST:PORT tries TLS, then a WebSocket over TLS, " +
      "on that port; tls://HOST:PORT only TLS; wss://HOST[:PORT][/PATH] only a WebSocket (port " +
      `443, path ${WEBSOCKET_PATH} by default), for networks that pass only HTTPS. Repeat it ` +
      "to attach to several relays (each gets the services and serves its own clients); a " +
      "name with several addresses attaches to each of them.",
    example: "--relay wss://relay.example.com/porthole",
  },
  proxy: {
    value: "URL",
    defaultText: "$HTTPS_PROXY or $ALL_PROXY",
    help: "Reach the relay through this proxy (with a WebSocket, which carries half-closes " +
      "that proxies drop) when the direct paths fail: http://[USER:PASSWORD@]HOST:PORT " +
      "(CONNECT) or socks5://[USER:PASSWORD@]HOST:PORT (the proxy resolves the relay's name); " +
      "none for no proxy. Without it, the environment's https_proxy, HTTPS_PROXY, all_proxy or " +
      "ALL_PROXY is used, unless NO_PROXY names the relay.",
    example: "--proxy http://alice:secret@proxy.corp:3128",
  },
  service: {
    value: "ID[@PORT]=HOST:PORT",
    repeats: true,
    help: "A service to publish under ID, and the address this agent dials for it (repeatable, " +
      "at least one). @PORT asks the relay for that public port; otherwise the relay picks one " +
      "(or uses its pin). http://HOST:PORT says it speaks HTTP: the relay's HTTP front reaches " +
      "it too, at ID.DOMAIN.",
    example: "--service web@8080=http://127.0.0.1:3000",
  },
  host: {
    value: "ID=NAME",
    repeats: true,
    help: "A host name service ID answers to on the relay's HTTP, HTTPS and proxy fronts, " +
      "besides ID.DOMAIN (repeatable); the relay's config must allow it for this agent.",
    example: "--host web=www.example.com",
  },
  "proxy-protocol": {
    value: "ID=VERSION",
    repeats: true,
    help: "Open each connection to service ID with a PROXY protocol header (VERSION v1 or v2) " +
      "naming the real client, for a service that reads it (nginx's listen ... proxy_protocol, " +
      "HAProxy's accept-proxy).",
    example: "--proxy-protocol web=v2",
  },
  "health-check": {
    value: "ID=CHECK",
    repeats: true,
    help: "Check service ID's health: tcp (a connect) or http[:/PATH] (a GET that answers 2xx " +
      "or 3xx), then optional ,interval=SECS (10), ,timeout=SECS (2), ,fall=N (3) and ,rise=N " +
      "(2). After fall failures in a row the relays give it no clients (the other agents of " +
      "its group get them); after rise passes it gets them again.",
    example: "--health-check web=http:/healthz,interval=5",
  },
  "secret-file": {
    value: "FILE",
    help: "File holding the secret shared with the relay (or set the PORTHOLE_SECRET " +
      "environment variable).",
  },
  fingerprint: {
    value: "SHA256",
    help: "Trust the relay whose certificate has this SHA-256 fingerprint (the relay prints it " +
      "at start). For a self-signed relay.",
  },
  ca: {
    value: "FILE",
    help: "Trust relay certificates signed by this CA (PEM).\nWithout --fingerprint or --ca, the " +
      "system's roots are trusted (for a relay with a real certificate).",
  },
  insecure: {
    help: "No TLS to the relay (plain TCP, or ws://): no encryption. The relay must use it too.",
  },
  id: {
    value: "NAME",
    defaultText: "the host name",
    help: "This agent's id, unique on the relay.",
  },
  "path-recheck": {
    value: "SECS",
    default: String(PATH_RECHECK_MS / 1000),
    help: "While the agent reaches the relay by a worse path (through a proxy, say), how often " +
      "it checks whether a better one answers again; when one does, it moves to it.",
  },
  spares: {
    value: "MIN-MAX",
    default: `${DEFAULT_MIN_SPARES}-${DEFAULT_MAX_SPARES}`,
    help: "Spare data channels to keep open to the relay, so that a new client waits one round " +
      "trip of the link instead of three or four: MIN while idle, up to MAX while busy (and " +
      "what the relay allows). 0 for none: each client's data channel is opened when it comes.",
    example: "--spares 0",
  },
  ...adminFlags(AGENT_ADMIN_ADDRESS),
  "early-data": {
    value: "on|off",
    default: "on",
    help: "While a new client's data channel is being opened, carry its first bytes and the " +
      "service's first answer over the control channel, so the answer comes one round trip " +
      "after the client asked. off: the client waits for its data channel.",
    example: "--early-data off",
  },
  "reconnect-max": {
    value: "SECS",
    default: String(RECONNECT_MAX_MS / 1000),
    help: "Longest pause between attempts to reach a lost relay; pauses start at " +
      `${RECONNECT_MIN_MS / 1000} s and double, with jitter.`,
  },
  "relay-dns-refresh": {
    value: "SECS|off",
    default: String(RELAY_DNS_REFRESH_MS / 1000),
    help: "How often relay names are resolved again: a relay added to a name's DNS answer is " +
      "attached to, one removed from it is left; off resolves them at start only.",
  },
  "retry-refused": {
    value: "SECS",
    defaultText: "exit",
    help: "When the relay refuses this agent (wrong secret, incompatible version), try again " +
      `every SECS instead of exiting with code ${EXIT_REFUSED}.`,
  },
  ...COMMON_FLAGS,
} as const satisfies FlagTable;

/** What `agent --help` prints. */
export const AGENT_HELP = `porthole agent ${VERSION}: the private end of a porthole tunnel.

Runs inside a private network, dials out to a porthole relay, and lets the relay's clients
reach the services named here. Nothing needs to be open inbound.

Usage: agent --relay ADDRESS --service ID=HOST:PORT [flags]
${ADMIN_COMMANDS_HELP}

Flags:
${flagHelp(AGENT_FLAGS)}
Exit codes: 0 stopped by a signal; ${EXIT_USAGE} bad flags or secret; ${EXIT_REFUSED} \
refused by the relay (wrong
secret or incompatible version). Lost connections to the relay are retried with backoff.
SIGUSR2 logs a status line (relay connected or not, open connections). SIGHUP reads the
--config file again and applies its services live: added ones are published, removed ones
withdrawn (their connected clients finish), the others' connections are untouched.

Example:
  agent --relay relay.example.com:7835 --secret-file ./secret --fingerprint 5C:4D:…:85 \\
        --service web=127.0.0.1:3000
`;
