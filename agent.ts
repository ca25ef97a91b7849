/**
 * porthole agent: the private end of the tunnel. It dials out to the relay and serves the
 * relay's clients from the services it names. `deno run -P=agent agent.ts --help` lists the flags.
 */

import { AgentFatalError, startAgent } from "./lib/agent/agent.ts";
import { AGENT_FLAGS, AGENT_HELP } from "./lib/agent_flags.ts";
import { readSecret } from "./lib/auth.ts";
import {
  applyHostNames,
  applyLogLevel,
  applyProxyProtocol,
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
import { parseFlags } from "./lib/flags.ts";
import { createLogger } from "./lib/log.ts";
import type { HostPort } from "./lib/net.ts";
import { TcpDialer } from "./lib/transport/tcp.ts";
import { TlsDialer } from "./lib/transport/tls.ts";
import type { RelayDialer } from "./lib/transport/transport.ts";

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
    const flags = parseFlags(AGENT_FLAGS, Deno.args);
    if (flags.help) return console.log(AGENT_HELP);
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
    const services = parseAgentServices(flags.service);
    applyProxyProtocol(services, flags["proxy-protocol"]);
    applyHostNames(services, flags.host);
    const agent = startAgent({
      dialer: await relayDialer(parseAddress(flags.relay, "--relay"), flags),
      secret: await readSecret(flags["secret-file"]),
      id,
      services,
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
