/**
 * porthole relay: the public end of the tunnel. Agents dial it; clients dial the services it
 * publishes. `deno run -P=relay relay.ts --help` lists the flags.
 */

import { parseArgs } from "node:util";
import { readSecret } from "./lib/auth.ts";
import {
  applyLogLevel,
  COMMON_HELP,
  COMMON_OPTIONS,
  onShutdownSignal,
  onStatusSignal,
  parseAddress,
  parseOptionalSeconds,
  parsePortRange,
  parseSeconds,
  parseServiceSpecs,
  readFlagFile,
  runCommand,
  UsageError,
  VERSION,
} from "./lib/cli.ts";
import { createLogger } from "./lib/log.ts";
import { loadRelayConfig } from "./lib/relay/config.ts";
import { startRelay } from "./lib/relay/relay.ts";
import {
  defaultStateDir,
  fingerprintOf,
  loadOrCreateCertificate,
} from "./lib/transport/certificate.ts";
import { plainTcp } from "./lib/transport/tcp.ts";
import { tlsTransport } from "./lib/transport/tls.ts";

const HELP = `porthole relay ${VERSION}: the public end of a porthole tunnel.

Agents inside private networks dial this relay; clients on the internet then reach their
services through it.

Usage: relay [flags]

Flags:
  --listen HOST:PORT        Where agents dial; control and data channels share this port.
                            Default: 0.0.0.0:7835.  Example: --listen [::]:7835
  --secret-file FILE        File holding the secret agents must prove they know (or set the
                            PORTHOLE_SECRET environment variable). At least 16 characters;
                            make one with: openssl rand -hex 32 > secret
  --config FILE             TOML file: agents with their own secrets and the service ids and
                            ports each may claim, client access rules per service, limits.
                            Re-read on SIGHUP (see README, "Relay configuration").
  --expose ID=HOST:PORT     Pin service ID to a public address (repeatable). Clients of a
                            pinned service whose agent is offline are closed at once.
                            Example: --expose web=0.0.0.0:8080
  --cert FILE, --key FILE   Certificate (PEM, full chain) and key for the agent port, e.g.
                            from your CA or Let's Encrypt; agents then need no extra flag.
                            Without them the relay makes a self-signed certificate on first
                            start, keeps it in --state-dir, and prints its fingerprint for the
                            agents' --fingerprint.
  --state-dir DIR           Where the generated certificate and key (mode 0600) live.
                            Default: $XDG_STATE_HOME/porthole or ~/.local/state/porthole.
  --insecure                Plain TCP between agents and relay: no encryption. Only for tests
                            or a network you trust; agents must use --insecure too.
  --port-range FIRST-LAST   Ports for services that are not pinned, bound on the --listen host.
                            Default: 20000-20999.
  --connect-timeout SECS    How long a client is held while its agent opens the data channel;
                            the one-time connection id expires then. Default: 10.
  --heartbeat SECS          Interval of heartbeats on control channels; an agent silent for
                            three intervals is dropped (and it drops a silent relay alike).
                            Default: 10.
${COMMON_HELP}
Signals: SIGINT/SIGTERM stop gracefully (exit 0); SIGUSR2 logs a status line with the number
of agents, services, waiting clients and open connections, and the memory in use.

Example:
  relay --listen 0.0.0.0:7835 --secret-file /etc/porthole/secret --expose web=0.0.0.0:8080
`;

const log = createLogger("relay");

/** The certificate the flags ask for (given, or generated and kept); undefined with --insecure. */
async function loadCertificate(
  flags: { cert?: string; key?: string; "state-dir"?: string; insecure: boolean },
) {
  if (flags.insecure) {
    if (flags.cert || flags.key) throw new UsageError("--insecure cannot go with --cert/--key");
    log.warn(
      "TLS is off (--insecure): traffic between agents and this relay can be read and changed " +
        "by anyone on the path",
    );
    return undefined;
  }
  if (Boolean(flags.cert) !== Boolean(flags.key)) {
    throw new UsageError("--cert and --key go together");
  }
  let certified;
  if (flags.cert && flags.key) {
    certified = {
      cert: await readFlagFile(flags.cert, "--cert"),
      key: await readFlagFile(flags.key, "--key"),
    };
  } else {
    const stateDir = flags["state-dir"] ?? defaultStateDir();
    const loaded = await loadOrCreateCertificate(stateDir);
    log.info(
      `${
        loaded.created ? "created a self-signed certificate" : "using the certificate"
      } in ${stateDir}`,
    );
    certified = loaded;
  }
  log.info(`TLS certificate fingerprint (SHA-256): ${fingerprintOf(certified.cert)}`);
  return { cert: certified.cert, key: certified.key };
}

/** The HTTP front the flags ask for: --http with --domain. */
function httpFront(flags: { http?: string; domain?: string }) {
  if (flags.http === undefined) {
    if (flags.domain !== undefined) throw new UsageError("--domain goes with --http");
    return undefined;
  }
  if (!flags.domain) {
    throw new UsageError("--http needs --domain: services are reached at ID.DOMAIN");
  }
  return { listen: parseAddress(flags.http, "--http"), domain: flags.domain.toLowerCase() };
}

Deno.exit(
  await runCommand("relay", async () => {
    const { values: flags } = parseArgs({
      args: Deno.args,
      options: {
        listen: { type: "string", default: "0.0.0.0:7835" },
        config: { type: "string" },
        expose: { type: "string", multiple: true, default: [] },
        "port-range": { type: "string", default: "20000-20999" },
        cert: { type: "string" },
        key: { type: "string" },
        "state-dir": { type: "string" },
        "connect-timeout": { type: "string", default: "10" },
        heartbeat: { type: "string", default: "10" },
        http: { type: "string" },
        domain: { type: "string" },
        proxy: { type: "string" },
        ...COMMON_OPTIONS,
      },
    });
    if (flags.help) return console.log(HELP);
    if (flags.version) return console.log(`porthole relay ${VERSION}`);
    applyLogLevel(flags["log-level"]);
    const config = flags.config ? await loadRelayConfig(flags.config) : undefined;
    const sharedSecretGiven = flags["secret-file"] !== undefined ||
      !!Deno.env.get("PORTHOLE_SECRET");
    const tls = await loadCertificate(flags);
    const shutdownTimeoutMs = parseSeconds(flags["shutdown-timeout"], "--shutdown-timeout");
    // Installed before the relay says it listens: a signal listener takes a moment to take effect.
    const status: { of?: () => object } = {};
    onStatusSignal(log, () => status.of?.() ?? {});
    const relay = await startRelay({
      transport: tls ? tlsTransport(tls) : plainTcp,
      config,
      listen: parseAddress(flags.listen, "--listen"),
      // With agents listed in --config, a shared secret is optional.
      secret: config?.agents && !sharedSecretGiven
        ? undefined
        : await readSecret(flags["secret-file"]),
      expose: parseServiceSpecs(flags.expose, "--expose"),
      portRange: parsePortRange(flags["port-range"]),
      connectTimeoutMs: parseSeconds(flags["connect-timeout"], "--connect-timeout"),
      heartbeatMs: parseSeconds(flags.heartbeat, "--heartbeat"),
      idleTimeoutMs: parseOptionalSeconds(flags["idle-timeout"], "--idle-timeout"),
      http: httpFront(flags),
      proxy: flags.proxy === undefined
        ? undefined
        : { listen: parseAddress(flags.proxy, "--proxy") },
    });
    status.of = relay.stats;
    if (flags.config) {
      const path = flags.config;
      Deno.addSignalListener("SIGHUP", async () => {
        try {
          relay.reload(await loadRelayConfig(path));
        } catch (error) {
          log.error(`SIGHUP: ${(error as Error).message}; keeping the previous configuration`);
        }
      });
    }
    await new Promise<void>((resolve) =>
      onShutdownSignal((signal) => {
        log.info(`${signal}: shutting down: no new agents or clients`);
        relay.shutdown(shutdownTimeoutMs).then(resolve);
      }, () => Deno.exit(1))
    );
  }),
);
