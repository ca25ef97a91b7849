/**
 * porthole agent: the private end of the tunnel. It dials out to the relay and serves the
 * relay's clients from the services it names. `deno run -P=agent agent.ts --help` lists the flags.
 */

import { AgentFatalError, type AgentOptions, startAgent } from "./lib/agent/agent.ts";
import { blameFile, configArgs } from "./lib/agent/config_file.ts";
import { runAdminCommand } from "./lib/agent/admin_cli.ts";
import { serviceRoutes } from "./lib/agent/admin_services.ts";
import { AGENT_FLAGS, AGENT_HELP } from "./lib/agent_flags.ts";
import { readSecret } from "./lib/auth.ts";
import {
  applyLogFormat,
  applyLogLevel,
  EXIT_REFUSED,
  onShutdownSignal,
  onStatusSignal,
  parseOnOff,
  parseOptionalSeconds,
  parseSeconds,
  parseSecondsOrOff,
  parseSpares,
  runCommand,
  SERVICE_ID_PATTERN,
  UsageError,
  VERSION,
} from "./lib/cli.ts";
import {
  applyHostNames,
  applyProxyProtocol,
  parseAgentServices,
} from "./lib/agent/service_flags.ts";
import { type FlagValues, parseFlags } from "./lib/flags.ts";
import { adminFromFlags, AGENT_ADMIN_ADDRESS } from "./lib/admin/flags.ts";
import { createLogger } from "./lib/log.ts";
import {
  keepRelaysResolved,
  type RelaySpec,
  relaySpecs,
  type ResolvedRelay,
  resolveRelays,
} from "./lib/agent/relays_from_flags.ts";
import { applyHealthChecks } from "./lib/agent/health.ts";

const log = createLogger("agent");

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
  applyHealthChecks(services, flags["health-check"]);
  return services;
}

/**
 * What the agent is started with, from its flags, with its relays' specs and how often their
 * names are resolved again; throws a UsageError for a bad value.
 */
async function agentOptions(flags: FlagValues<typeof AGENT_FLAGS>): Promise<
  AgentOptions & { relays: ResolvedRelay[]; specs: RelaySpec[]; dnsRefreshMs?: number }
> {
  const id = flags.id ?? Deno.hostname();
  if (!SERVICE_ID_PATTERN.test(id)) {
    throw new UsageError(`--id "${id}" may hold only letters, digits, '.', '_' and '-'`);
  }
  const specs = await relaySpecs(flags);
  return {
    specs,
    dnsRefreshMs: parseSecondsOrOff(flags["relay-dns-refresh"], "--relay-dns-refresh"),
    relays: await resolveRelays(specs),
    secret: await readSecret(flags["secret-file"]),
    id,
    services: servicesOf(flags),
    reconnectMaxMs: parseSeconds(flags["reconnect-max"], "--reconnect-max"),
    retryRefusedMs: parseOptionalSeconds(flags["retry-refused"], "--retry-refused"),
    idleTimeoutMs: parseOptionalSeconds(flags["idle-timeout"], "--idle-timeout"),
    spares: parseSpares(flags.spares),
    earlyData: parseOnOff(flags["early-data"], "--early-data"),
    pathRecheckMs: parseSeconds(flags["path-recheck"], "--path-recheck"),
    shutdownTimeoutMs: parseSeconds(flags["shutdown-timeout"], "--shutdown-timeout"),
  };
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
    const options = await agentOptions(flags).catch((error) => {
      throw blameFile(error, flags.config, Deno.args);
    });
    const agent = startAgent(options);
    if (options.dnsRefreshMs) {
      keepRelaysResolved(agent, options.specs, options.relays, options.dnsRefreshMs);
    }
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
