/**
 * porthole agent: the private end of the tunnel. It dials out to the relay and serves the
 * relay's clients from the services it names. `deno run -P=agent agent.ts --help` lists the flags.
 */

import { AgentFatalError, runAgent } from "./lib/agent/agent.ts";
import { AGENT_FLAGS, AGENT_HELP } from "./lib/agent_flags.ts";
import { readSecret } from "./lib/auth.ts";
import {
  applyLogLevel,
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
import { RelayDialer, type RelayTrust } from "./lib/tls.ts";

const log = createLogger("agent");

/** How to trust the relay, from --fingerprint, --ca or --insecure (at most one). */
async function relayTrust(
  flags: { fingerprint?: string; ca?: string; insecure: boolean },
): Promise<RelayTrust> {
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
    return { kind: "insecure" };
  }
  if (flags.fingerprint) {
    if (!/^([0-9a-f]{2}:?){31}[0-9a-f]{2}$/i.test(flags.fingerprint)) {
      throw new UsageError(
        `--fingerprint "${flags.fingerprint}" is not a SHA-256 fingerprint (64 hex digits, colons optional)`,
      );
    }
    return { kind: "fingerprint", sha256: flags.fingerprint };
  }
  if (flags.ca) return { kind: "ca", pem: await readFlagFile(flags.ca, "--ca") };
  return { kind: "system" };
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
    const controller = new AbortController();
    onShutdownSignal((signal) => {
      log.info(`${signal}: shutting down`);
      controller.abort();
    }, () => Deno.exit(1));
    const relay = parseAddress(flags.relay, "--relay");
    await runAgent({
      dialer: new RelayDialer(relay, await relayTrust(flags)),
      secret: await readSecret(flags["secret-file"]),
      id,
      services: parseAgentServices(flags.service),
      reconnectMaxMs: parseSeconds(flags["reconnect-max"], "--reconnect-max"),
      retryRefusedMs: parseOptionalSeconds(flags["retry-refused"], "--retry-refused"),
      idleTimeoutMs: parseOptionalSeconds(flags["idle-timeout"], "--idle-timeout"),
      shutdownTimeoutMs: parseSeconds(flags["shutdown-timeout"], "--shutdown-timeout"),
      watch: (stats) => onStatusSignal(log, stats),
    }, controller.signal);
  }, (error) => error instanceof AgentFatalError ? EXIT_REFUSED : undefined),
);
