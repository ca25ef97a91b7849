/**
 * porthole agent: the private end of the tunnel. It dials out to the relay and serves the
 * relay's clients from the services it names. `deno run -P=agent agent.ts --help` lists the flags.
 */

import { parseArgs } from "node:util";
import { AgentFatalError, startAgent } from "./lib/agent/agent.ts";
import { readSecret } from "./lib/auth.ts";
import {
  applyLogLevel,
  COMMON_HELP,
  COMMON_OPTIONS,
  EXIT_REFUSED,
  onShutdownSignal,
  onStatusSignal,
  parseAddress,
  parseAgentServices,
  parseOptionalSeconds,
  parseSeconds,
  readFlagFile,
  runCommand,
  SERVICE_ID_PATTERN,
  UsageError,
  VERSION,
} from "./lib/cli.ts";
import { createLogger } from "./lib/log.ts";
import type { HostPort } from "./lib/net.ts";
import { TcpDialer } from "./lib/transport/tcp.ts";
import { TlsDialer } from "./lib/transport/tls.ts";
import type { RelayDialer } from "./lib/transport/transport.ts";

const HELP = `porthole agent ${VERSION}: the private end of a porthole tunnel.

Runs inside a private network, dials out to a porthole relay, and lets the relay's clients
reach the services named here. Nothing needs to be open inbound.

Usage: agent --relay HOST:PORT --service ID=HOST:PORT [flags]

Flags:
  --relay HOST:PORT         The relay's agent port (required).
                            Example: --relay relay.example.com:7835
  --service ID[@PORT]=HOST:PORT
                            A service to publish under ID, and the address this agent dials
                            for it (repeatable, at least one). @PORT asks the relay for that
                            public port; otherwise the relay picks one (or uses its pin).
                            Example: --service web@8080=127.0.0.1:3000 --service db=[::1]:5432
  --secret-file FILE        File holding the secret shared with the relay (or set the
                            PORTHOLE_SECRET environment variable).
  --fingerprint SHA256      Trust the relay whose certificate has this SHA-256 fingerprint
                            (the relay prints it at start). For a self-signed relay.
  --ca FILE                 Trust relay certificates signed by this CA (PEM).
                            Without --fingerprint or --ca, the system's roots are trusted
                            (for a relay with a real certificate).
  --insecure                Plain TCP to the relay: no encryption. The relay must use it too.
  --id NAME                 This agent's id, unique on the relay. Default: the host name.
  --reconnect-max SECS      Longest pause between attempts to reach a lost relay; pauses start
                            at 0.5 s and double, with jitter. Default: 10.
  --retry-refused SECS      When the relay refuses this agent (wrong secret, incompatible
                            version), try again every SECS instead of exiting with code 3.
                            Default: exit.
${COMMON_HELP}
Exit codes: 0 stopped by a signal; 2 bad flags or secret; 3 refused by the relay (wrong
secret or incompatible version). Lost connections to the relay are retried with backoff.
SIGUSR2 logs a status line (relay connected or not, open connections).

Example:
  agent --relay relay.example.com:7835 --secret-file ./secret --fingerprint 5C:4D:…:85 \\
        --service web=127.0.0.1:3000
`;

const log = createLogger("agent");

/** How to reach and trust the relay, from --fingerprint, --ca or --insecure (at most one). */
async function relayDialer(
  relay: HostPort,
  flags: { fingerprint?: string; ca?: string; insecure: boolean },
): Promise<RelayDialer> {
  const chosen = [
    flags.fingerprint && "--fingerprint",
    flags.ca && "--ca",
    flags.insecure && "--insecure",
  ]
    .filter(Boolean);
  if (chosen.length > 1) throw new UsageError(`${chosen.join(" and ")} exclude each other`);
  if (flags.insecure) {
    log.warn(
      "TLS is off (--insecure): traffic to the relay can be read and changed by anyone on the path",
    );
    return new TcpDialer(relay);
  }
  if (flags.fingerprint) {
    if (!/^([0-9a-f]{2}:?){31}[0-9a-f]{2}$/i.test(flags.fingerprint)) {
      throw new UsageError(
        `--fingerprint "${flags.fingerprint}" is not a SHA-256 fingerprint (64 hex digits, colons optional)`,
      );
    }
    return new TlsDialer(relay, { kind: "fingerprint", sha256: flags.fingerprint });
  }
  if (flags.ca) {
    return new TlsDialer(relay, { kind: "ca", pem: await readFlagFile(flags.ca, "--ca") });
  }
  return new TlsDialer(relay, { kind: "system" });
}

Deno.exit(
  await runCommand("agent", async () => {
    const { values: flags } = parseArgs({
      args: Deno.args,
      options: {
        relay: { type: "string" },
        service: { type: "string", multiple: true, default: [] },
        id: { type: "string" },
        fingerprint: { type: "string" },
        ca: { type: "string" },
        "reconnect-max": { type: "string", default: "10" },
        "retry-refused": { type: "string" },
        ...COMMON_OPTIONS,
      },
    });
    if (flags.help) return console.log(HELP);
    if (flags.version) return console.log(`porthole agent ${VERSION}`);
    applyLogLevel(flags["log-level"]);
    if (!flags.relay) throw new UsageError("--relay HOST:PORT is required");
    if (flags.service.length === 0) {
      throw new UsageError("at least one --service ID=HOST:PORT is required");
    }
    const id = flags.id ?? Deno.hostname();
    if (!SERVICE_ID_PATTERN.test(id)) {
      throw new UsageError(`--id "${id}" may hold only letters, digits, '.', '_' and '-'`);
    }
    const agent = startAgent({
      dialer: await relayDialer(parseAddress(flags.relay, "--relay"), flags),
      secret: await readSecret(flags["secret-file"]),
      id,
      services: parseAgentServices(flags.service),
      reconnectMaxMs: parseSeconds(flags["reconnect-max"], "--reconnect-max"),
      retryRefusedMs: parseOptionalSeconds(flags["retry-refused"], "--retry-refused"),
      idleTimeoutMs: parseOptionalSeconds(flags["idle-timeout"], "--idle-timeout"),
      shutdownTimeoutMs: parseSeconds(flags["shutdown-timeout"], "--shutdown-timeout"),
    });
    onStatusSignal(log, agent.stats);
    onShutdownSignal((signal) => {
      log.info(`${signal}: shutting down`);
      agent.shutdown();
    }, () => Deno.exit(1));
    await agent.done;
  }, (error) => error instanceof AgentFatalError ? EXIT_REFUSED : undefined),
);
