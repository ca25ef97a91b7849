/**
 * porthole agent: the private end of the tunnel. It dials out to the relay and serves the
 * relay's clients from the services it names. `deno run -P=agent agent.ts --help` lists the flags.
 */

import { AgentFatalError, startAgent } from "./lib/agent/agent.ts";
import { configArgs } from "./lib/agent/config_file.ts";
import { runAdminCommand } from "./lib/agent/admin_cli.ts";
import { serviceRoutes } from "./lib/agent/admin_services.ts";
import { AGENT_FLAGS, AGENT_HELP } from "./lib/agent_flags.ts";
import { readSecret } from "./lib/auth.ts";
import {
  applyHostNames,
  applyLogFormat,
  applyLogLevel,
  applyProxyProtocol,
  EXIT_REFUSED,
  onShutdownSignal,
  onStatusSignal,
  parseAgentServices,
  parseOnOff,
  parseOptionalSeconds,
  parseSeconds,
  parseSpares,
  readFlagFile,
  runCommand,
  SERVICE_ID_PATTERN,
  UsageError,
  VERSION,
} from "./lib/cli.ts";
import { type FlagValues, parseFlags } from "./lib/flags.ts";
import { adminFromFlags, AGENT_ADMIN_ADDRESS } from "./lib/admin/flags.ts";
import { createLogger } from "./lib/log.ts";
import {
  parseRelayAddress,
  proxyRoute,
  type RelayPath,
  relayPaths,
} from "./lib/agent/relay_paths.ts";
import type { RelayTrust } from "./lib/transport/tls.ts";

const log = createLogger("agent");

/** The paths to the relay, from --relay and --proxy, trusted by --fingerprint, --ca or --insecure. */
async function pathsToRelay(
  flags: { relay: string; proxy?: string; fingerprint?: string; ca?: string; insecure: boolean },
): Promise<RelayPath[]> {
  const chosen = [
    flags.fingerprint && "--fingerprint",
    flags.ca && "--ca",
    flags.insecure && "--insecure",
  ]
    .filter(Boolean);
  if (chosen.length > 1) throw new UsageError(`${chosen.join(" and ")} exclude each other`);
  let address, proxy;
  try {
    address = parseRelayAddress(flags.relay);
    proxy = proxyRoute(flags.proxy, address.relay);
  } catch (error) {
    throw new UsageError(`--relay: ${(error as Error).message}`);
  }
  if (address.plain && !flags.insecure) {
    throw new UsageError(
      "--relay ws:// is not encrypted: use wss://, or add --insecure to mean it",
    );
  }
  if (flags.insecure) {
    if (address.transport === "websocket" && !address.plain) {
      throw new UsageError("--insecure turns TLS off, so the relay is ws://HOST/PATH, not wss://");
    }
    log.warn(
      "TLS is off (--insecure): traffic to the relay can be read and changed by anyone on the path",
    );
    return relayPaths({ address, proxy });
  }
  return relayPaths({ address, proxy, trust: await relayTrust(flags) });
}

/** How the relay's certificate is checked: by --fingerprint, --ca, or the system's roots. */
async function relayTrust(flags: { fingerprint?: string; ca?: string }): Promise<RelayTrust> {
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

/** The flags of `args`, over those of its --config file if it names one. */
async function readFlags(args = Deno.args) {
  const configFile = parseFlags(AGENT_FLAGS, args).config;
  const fromFile = configFile ? await configArgs(configFile, AGENT_FLAGS, args) : [];
  return parseFlags(AGENT_FLAGS, [...fromFile, ...args]);
}

/** The services that `--service`, `--proxy-protocol` and `--host` describe (one at least). */
function servicesOf(flags: FlagValues<typeof AGENT_FLAGS>) {
  if (flags.service.length === 0) {
    throw new UsageError("at least one --service ID=HOST:PORT is required");
  }
  const services = parseAgentServices(flags.service);
  applyProxyProtocol(services, flags["proxy-protocol"]);
  applyHostNames(services, flags.host);
  return services;
}

Deno.exit(
  await runCommand("agent", async () => {
    const command = ["status", "service"].includes(Deno.args[0]);
    if (command) {
      const positional = Math.max(0, Deno.args.findIndex((arg) => arg.startsWith("-"))) ||
        Deno.args.length;
      const flags = await readFlags(Deno.args.slice(positional));
      return await runAdminCommand(Deno.args.slice(0, positional), flags);
    }
    const flags = await readFlags();
    if (flags.help) return console.log(AGENT_HELP);
    if (flags.version) return console.log(`porthole agent ${VERSION}`);
    applyLogLevel(flags["log-level"]);
    applyLogFormat(flags["log-format"]);
    if (!flags.relay) {
      throw new UsageError("--relay ADDRESS is required (HOST:PORT or wss://HOST/PATH)");
    }
    const id = flags.id ?? Deno.hostname();
    if (!SERVICE_ID_PATTERN.test(id)) {
      throw new UsageError(`--id "${id}" may hold only letters, digits, '.', '_' and '-'`);
    }
    const services = servicesOf(flags);
    const agent = startAgent({
      paths: await pathsToRelay({ ...flags, relay: flags.relay }),
      secret: await readSecret(flags["secret-file"]),
      id,
      services,
      reconnectMaxMs: parseSeconds(flags["reconnect-max"], "--reconnect-max"),
      retryRefusedMs: parseOptionalSeconds(flags["retry-refused"], "--retry-refused"),
      idleTimeoutMs: parseOptionalSeconds(flags["idle-timeout"], "--idle-timeout"),
      spares: parseSpares(flags.spares),
      earlyData: parseOnOff(flags["early-data"], "--early-data"),
      pathRecheckMs: parseSeconds(flags["path-recheck"], "--path-recheck"),
      shutdownTimeoutMs: parseSeconds(flags["shutdown-timeout"], "--shutdown-timeout"),
    });
    onStatusSignal(log, agent.stats);
    Deno.addSignalListener("SIGHUP", async () => {
      if (!flags.config) return log.warn("SIGHUP: there is no --config file to read again");
      try {
        agent.updateServices(servicesOf(await readFlags()));
      } catch (error) {
        log.error(`SIGHUP: ${(error as Error).message}; the services stay as they were`);
      }
    });
    const admin = await adminFromFlags(flags, "agent", AGENT_ADMIN_ADDRESS, {
      status: agent.status,
      metrics: agent.metrics,
      extra: serviceRoutes(agent),
    });
    onShutdownSignal((signal) => {
      log.info(`${signal}: shutting down`);
      agent.shutdown();
    }, () => Deno.exit(1));
    await agent.done.finally(() => admin?.close());
  }, (error) => error instanceof AgentFatalError ? EXIT_REFUSED : undefined),
);
