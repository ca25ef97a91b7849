/**
 * porthole relay: the public end of the tunnel. Agents dial it; clients dial the services it
 * publishes. `deno run -P=relay relay.ts --help` lists the flags.
 */

import { parseArgs } from "node:util";
import { readSecret } from "./lib/auth.ts";
import {
  applyLogLevel,
  onShutdownSignal,
  onStatusSignal,
  parseAddress,
  parseOptionalSeconds,
  parsePortRange,
  parseSeconds,
  parseServiceSpecs,
  runCommand,
  VERSION,
} from "./lib/cli.ts";
import { createLogger } from "./lib/log.ts";
import { type Relay, startRelay } from "./lib/relay/relay.ts";

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
  --expose ID=HOST:PORT     Pin service ID to a public address (repeatable). Clients of a
                            pinned service whose agent is offline are closed at once.
                            Example: --expose web=0.0.0.0:8080
  --port-range FIRST-LAST   Ports for services that are not pinned, bound on the --listen host.
                            Default: 20000-20999.
  --connect-timeout SECS    How long a client is held while its agent opens the data channel;
                            the one-time connection id expires then. Default: 10.
  --heartbeat SECS          Interval of heartbeats on control channels; an agent silent for
                            three intervals is dropped (and it drops a silent relay alike).
                            Default: 10.
  --idle-timeout SECS       Close a client connection when no byte has moved either way for
                            this long. Default: off.
  --shutdown-timeout SECS   On SIGINT/SIGTERM, how long open connections get to finish before
                            they are closed; a second signal stops at once. Default: 10.
  --log-level LEVEL         debug, info, warn or error. Default: info. Logs go to stderr.
  -h, --help                Show this help.
  -V, --version             Print the version.

Signals: SIGINT/SIGTERM stop gracefully (exit 0); SIGUSR2 logs a status line with the number
of agents, services, waiting clients and open connections, and the memory in use.

Example:
  relay --listen 0.0.0.0:7835 --secret-file /etc/porthole/secret --expose web=0.0.0.0:8080
`;

const log = createLogger("relay");

Deno.exit(
  await runCommand("relay", async () => {
    const { values: flags } = parseArgs({
      args: Deno.args,
      options: {
        listen: { type: "string", default: "0.0.0.0:7835" },
        "secret-file": { type: "string" },
        expose: { type: "string", multiple: true, default: [] },
        "port-range": { type: "string", default: "20000-20999" },
        "connect-timeout": { type: "string", default: "10" },
        heartbeat: { type: "string", default: "10" },
        "idle-timeout": { type: "string" },
        "shutdown-timeout": { type: "string", default: "10" },
        "log-level": { type: "string", default: "info" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "V" },
      },
    });
    if (flags.help) return console.log(HELP);
    if (flags.version) return console.log(`porthole relay ${VERSION}`);
    applyLogLevel(flags["log-level"]);
    const shutdownTimeoutMs = parseSeconds(flags["shutdown-timeout"], "--shutdown-timeout");
    // Installed before the relay announces itself: a listener takes a moment to take effect.
    let relay: Relay | undefined = undefined;
    onStatusSignal(log, () => relay?.stats() ?? {});
    relay = startRelay({
      listen: parseAddress(flags.listen, "--listen"),
      secret: await readSecret(flags["secret-file"]),
      expose: parseServiceSpecs(flags.expose, "--expose"),
      portRange: parsePortRange(flags["port-range"]),
      connectTimeoutMs: parseSeconds(flags["connect-timeout"], "--connect-timeout"),
      heartbeatMs: parseSeconds(flags.heartbeat, "--heartbeat"),
      idleTimeoutMs: parseOptionalSeconds(flags["idle-timeout"], "--idle-timeout"),
    });
    await new Promise<void>((resolve) =>
      onShutdownSignal((signal) => {
        log.info(`${signal}: shutting down: no new agents or clients`);
        relay!.shutdown(shutdownTimeoutMs).then(resolve);
      }, () => Deno.exit(1))
    );
  }),
);
