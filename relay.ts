/**
 * porthole relay: the public end of the tunnel. Agents dial it; clients dial the services it
 * publishes. `deno run -P=relay relay.ts --help` lists the flags.
 */

import { readSecret } from "./lib/auth.ts";
import {
  applyLogFormat,
  applyLogLevel,
  onShutdownSignal,
  onStatusSignal,
  parseAddress,
  parseOptionalSeconds,
  parsePortRange,
  parseSeconds,
  parseServiceSpecs,
  parseWebSocketPath,
  readFlagFile,
  runCommand,
  UsageError,
  VERSION,
} from "./lib/cli.ts";
import { parseFlags } from "./lib/flags.ts";
import {
  adminEndpoint,
  type AdminFlagValues,
  adminFromFlags,
  RELAY_ADMIN_ADDRESS,
} from "./lib/admin/flags.ts";
import { fetchAdmin, type RelayStatusDocument, statusTable } from "./lib/admin/status_table.ts";
import { startAdmin } from "./lib/admin/server.ts";
import { createLogger } from "./lib/log.ts";
import { loadRelayConfig } from "./lib/relay/config.ts";
import { startRelay } from "./lib/relay/relay.ts";
import { RELAY_FLAGS, RELAY_HELP } from "./lib/relay_flags.ts";
import {
  defaultStateDir,
  fingerprintOf,
  loadOrCreateCertificate,
} from "./lib/transport/certificate.ts";
import { plainTcp } from "./lib/transport/tcp.ts";
import { tlsTransport } from "./lib/transport/tls.ts";

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

/** The fronts that route by name, as the flags ask for them (--http, --https, --proxy). */
async function namedFronts(flags: {
  http?: string;
  https?: string;
  "https-cert": string[];
  "https-key": string[];
  "https-agents": string[];
  domain?: string;
  proxy?: string;
}) {
  const byHost = [flags.http && "--http", flags.https && "--https"].filter(Boolean);
  if (byHost.length > 0 && !flags.domain) {
    const need = byHost.length > 1 ? "need" : "needs";
    throw new UsageError(`${byHost.join(" and ")} ${need} --domain: services answer at ID.DOMAIN`);
  }
  const pairs = flags["https-cert"].length;
  if (pairs !== flags["https-key"].length || Boolean(flags.https) !== pairs > 0) {
    throw new UsageError(
      "--https goes with --https-cert and --https-key, one key for each certificate",
    );
  }
  if (flags["https-agents"].length > 0 && !flags.https) {
    throw new UsageError("--https-agents shares the --https port with agents: it needs --https");
  }
  const at = (value: string | undefined, flag: string) =>
    value === undefined ? undefined : { listen: parseAddress(value, flag) };
  const https = at(flags.https, "--https");
  return {
    domain: flags.domain?.toLowerCase(),
    http: at(flags.http, "--http"),
    https: https && {
      ...https,
      certificates: await httpsCertificates(flags),
      agentNames: flags["https-agents"],
    },
    proxy: at(flags.proxy, "--proxy"),
  };
}

/** `relay status`: the relay's /status, read from its admin API, as tables. */
async function printStatus(flags: AdminFlagValues) {
  const { address, token } = await adminEndpoint(flags, RELAY_ADMIN_ADDRESS);
  const document = await fetchAdmin(address, "/status", token);
  console.log(statusTable(document as RelayStatusDocument).trimEnd());
}

/** The HTTPS front's certificates, read from the --https-cert and --https-key pairs. */
function httpsCertificates(flags: { "https-cert": string[]; "https-key": string[] }) {
  return Promise.all(flags["https-cert"].map(async (cert, i) => ({
    cert: await readFlagFile(cert, "--https-cert"),
    key: await readFlagFile(flags["https-key"][i], "--https-key"),
  })));
}

Deno.exit(
  await runCommand("relay", async () => {
    const asksStatus = Deno.args[0] === "status";
    const flags = parseFlags(RELAY_FLAGS, asksStatus ? Deno.args.slice(1) : Deno.args);
    if (flags.help) return console.log(RELAY_HELP);
    if (asksStatus) return await printStatus(flags);
    if (flags.version) return console.log(`porthole relay ${VERSION}`);
    applyLogLevel(flags["log-level"]);
    applyLogFormat(flags["log-format"]);
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
      webSocketPath: parseWebSocketPath(flags["websocket-path"]),
      // With agents listed in --config, a shared secret is optional.
      secret: config?.agents && !sharedSecretGiven
        ? undefined
        : await readSecret(flags["secret-file"]),
      expose: parseServiceSpecs(flags.expose, "--expose"),
      portRange: parsePortRange(flags["port-range"]),
      connectTimeoutMs: parseSeconds(flags["connect-timeout"], "--connect-timeout"),
      heartbeatMs: parseSeconds(flags.heartbeat, "--heartbeat"),
      idleTimeoutMs: parseOptionalSeconds(flags["idle-timeout"], "--idle-timeout"),
      ...await namedFronts(flags),
      trustedProxies: flags["proxy-protocol-from"],
    });
    status.of = relay.stats;
    const admin = await adminFromFlags(flags, "relay", RELAY_ADMIN_ADDRESS, relay);
    const health = flags.health === undefined ? undefined : await startAdmin({
      address: parseAddress(flags.health, "--health"),
      program: "relay",
      routes: relay,
      healthOnly: true,
    });
    Deno.addSignalListener("SIGHUP", async () => {
      try {
        if (flags.config) relay.reload(await loadRelayConfig(flags.config));
        if (flags.https) {
          relay.setHttpsCertificates(await httpsCertificates(flags));
          log.info("SIGHUP: HTTPS certificates read again");
        }
      } catch (error) {
        log.error(`SIGHUP: ${(error as Error).message}; keeping the previous configuration`);
      }
    });
    await new Promise<void>((resolve) =>
      onShutdownSignal((signal) => {
        log.info(`${signal}: shutting down: no new agents or clients`);
        relay.shutdown(shutdownTimeoutMs)
          .then(() => Promise.all([admin?.close(), health?.close()]))
          .then(() => resolve());
      }, () => Deno.exit(1))
    );
  }),
);
