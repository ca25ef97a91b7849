/**
 * 5: the control plane under many agents. One load process (this one) holds {@link AGENTS} real
 * control channels to one relay, each speaking the protocol as an agent does (hello, proof,
 * register), and registering {@link SERVICES_PER_AGENT} services from the relay's port range.
 */

import { secretKey } from "../lib/auth.ts";
import { ControlChannel } from "../lib/channel.ts";
import { greetRelay } from "../lib/handshake.ts";
import { describeError } from "../lib/net.ts";
import { type RelayMessage, type RelayMessageOf } from "../lib/protocol.ts";
import { decodeRelayMessage } from "../lib/message_codec.ts";
import { type Bench, TARGETS } from "./phases.ts";
import { connect, percentile } from "./probes.ts";
import { cpuTicks, sleep, startPorthole, watchRss } from "./procs.ts";
import type { Measure } from "./report.ts";
import { freePortRange, freePorts, PLAIN_TCP, retryUntil } from "./tunnel.ts";

/** Agents connecting at once. */
export const AGENTS = 500;
/** Services each agent registers. */
export const SERVICES_PER_AGENT = 2;
/** Longest the whole registration may take. */
export const REGISTER_TIMEOUT_MS = 120_000;
/** Spare ports in the relay's range, in case another program takes one meanwhile. */
const SPARE_PORTS = 24;
/** Pause before and after the load, for the relay to settle. */
const SETTLE_MS = 500;

type Channel = ControlChannel<RelayMessage>;

/** Connects, authenticates and registers one simulated agent; resolves once all are online. */
async function registerAgent(
  port: number,
  id: string,
  secret: string,
  channels: Channel[],
): Promise<void> {
  const channel: Channel = new ControlChannel(await connect(port), decodeRelayMessage);
  channels.push(channel);
  const next = async <T extends RelayMessage["type"]>(type: T) => {
    const message = await channel.receive();
    if (message?.type !== type) {
      throw new Error(`agent ${id} expected "${type}", got ${JSON.stringify(message)}`);
    }
    return message as RelayMessageOf<T>;
  };
  await greetRelay(channel, id, secretKey(secret), `127.0.0.1:${port}`).catch((error) => {
    throw new Error(`agent ${id}: ${describeError(error)}`);
  });
  for (let i = 0; i < SERVICES_PER_AGENT; i++) {
    channel.send({ type: "register", service: `${id}-s${i}` });
  }
  for (let i = 0; i < SERVICES_PER_AGENT; i++) await next("registered");
  // Keep reading, so that the relay's heartbeats are answered until the channel is closed.
  (async () => {
    while (await channel.receive() !== null);
  })().catch(() => {});
}

/** Registers {@link AGENTS} agents at once; resolves when each is online or has failed. */
async function registerAll(port: number, secret: string, channels: Channel[]) {
  const started = performance.now();
  const onlineMs: number[] = [];
  const errors: string[] = [];
  const timer = setTimeout(
    () => channels.forEach((channel) => channel.close()),
    REGISTER_TIMEOUT_MS,
  );
  await Promise.all(
    Array.from(
      { length: AGENTS },
      (_, i) =>
        registerAgent(port, `bench-${i}`, secret, channels).then(
          () => onlineMs.push(performance.now() - started),
          (error) => errors.push((error as Error).message),
        ),
    ),
  ).finally(() => clearTimeout(timer));
  return {
    seconds: (performance.now() - started) / 1000,
    onlineMs: onlineMs.sort((a, b) => a - b),
    errors,
  };
}

/** 5: registers {@link AGENTS} agents with a fresh relay: time until all are online, relay RSS. */
export async function controlPlane(bench: Bench): Promise<Measure[]> {
  const range = freePortRange(AGENTS * SERVICES_PER_AGENT + SPARE_PORTS);
  const [port] = freePorts(1);
  const relay = startPorthole("relay", [
    ...["--listen", `127.0.0.1:${port}`, "--port-range", `${range.first}-${range.last}`],
    ...["--log-level", "warn", PLAIN_TCP],
  ], bench.secret);
  const channels: Channel[] = [];
  try {
    await retryUntil("the relay", () => connect(port).then((conn) => conn.close()), [relay]);
    await sleep(SETTLE_MS);
    const seen = relay.lineCount;
    const rss = watchRss({ relay: relay.pid });
    const ticks = cpuTicks(relay.pid);
    const run = await registerAll(port, bench.secret, channels);
    await sleep(SETTLE_MS);
    rss.stop();
    const { relay: idle } = rss.idle;
    const { relay: peak } = rss.peak;
    bench.details.control = {
      portRange: range,
      seconds: run.seconds,
      agentOnlineMs: { p50: percentile(run.onlineMs, 0.5), p99: percentile(run.onlineMs, 0.99) },
      relayCpuSeconds: (cpuTicks(relay.pid) - ticks) / bench.ticksPerSecond,
      idle,
      peak,
      errors: run.errors.slice(0, 10),
    };
    const log = relay.linesSince(seen);
    if (log.length > 0) bench.logs.control = log.slice(0, 50);
    return [{
      name: `control: ${AGENTS} agents × ${SERVICES_PER_AGENT} services online in`,
      unit: "s",
      better: "lower",
      tunnel: run.seconds,
    }, {
      name: "control: relay RSS idle → peak",
      unit: "MiB",
      better: "lower",
      idle: idle / 2 ** 20,
      tunnel: peak / 2 ** 20,
    }, {
      name: "control: relay memory per agent",
      unit: "KiB",
      better: "lower",
      tunnel: (peak - idle) / 1024 / AGENTS,
    }, {
      name: "control: failed agents",
      unit: "agents",
      better: "lower",
      tunnel: run.errors.length,
      target: TARGETS.failures,
      problem: run.errors[0],
    }];
  } finally {
    channels.forEach((channel) => channel.close());
    await relay.stop();
  }
}
