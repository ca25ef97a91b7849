/**
 * The data-plane measures (1–4 in bench/README.md). Each phase starts a relay and an agent of its
 * own, so one phase's leftovers (heap, buffers, TIME_WAIT sockets) do not weigh on the next, runs
 * a probe directly against the backend and then the same probe through the tunnel, and returns
 * the rows of the table.
 */

import {
  holdConnections,
  iperf3,
  percentile,
  sequentialConnections,
  type SetupResult,
  sinkTransfer,
} from "./probes.ts";
import { openFileLimit, sleep, watchRss } from "./procs.ts";
import type { Measure, Target } from "./report.ts";
import { type Backends, startIperfServer, startTunnel, type Tunnel } from "./tunnel.ts";

/** Times each throughput probe runs, taking turns direct and tunneled; the median counts. */
export const ROUNDS = 3;
/** Length of each iperf3 run, after one omitted second of slow start. */
export const IPERF_SECONDS = 5;
/** Bytes sent one way into the sink. */
export const SINK_BYTES = 2 ** 30;
/** Bytes sent once before, so that both paths are warm (JIT, buffer pool). */
export const SINK_WARMUP_BYTES = 64 * 2 ** 20;
/** Longest a sink transfer may take. */
export const SINK_TIMEOUT_MS = 120_000;
/** Fresh connections measured one after another. */
export const SEQUENTIAL_CONNECTIONS = 2_000;
/** Connections made before measuring, so that JIT compilation is not measured. */
export const WARMUP_CONNECTIONS = 200;
/** Held connections of the first concurrency burst. */
export const HELD_CONNECTIONS = 2_000;
/** Cap of the second concurrency burst, which is otherwise as large as the fd limits allow. */
export const MAX_HELD_CONNECTIONS = 10_000;
/** How long the held connections stay idle between their two echoes. */
export const HOLD_PAUSE_MS = 2_000;
/** Descriptors left to each process beyond its connections (listeners, runtime, pipes). */
export const FD_MARGIN = 200;
/** Pause after a probe so that the last connection's teardown shows in the CPU counters. */
const SETTLE_MS = 300;

const MIB = 2 ** 20;
const KIB = 2 ** 10;

/** The targets of the project's issue, in one place. */
export const TARGETS = {
  iperfSingleStream: { of: "ratio", value: 0.45 },
  sink: { of: "ratio", value: 0.3 },
  connectionsPerSecond: { of: "ratio", value: 0.45 },
  latencyP50: { of: "ratio", value: 2.2 },
  latencyP99: { of: "ratio", value: 3 },
  cpuPerConnectionMicros: { of: "tunnel", value: 650 },
  cpuPerGiBSeconds: { of: "tunnel", value: 1.5 },
  rssMiB: { of: "tunnel", value: 64 },
  perConnectionKiB: { of: "tunnel", value: 16 },
  failures: { of: "tunnel", value: 0 },
} satisfies Record<string, Target>;

/** What every phase needs. */
export interface Bench {
  /** The secret relay, agents and the control-plane load share. */
  secret: string;
  /** Clock ticks per second of the /proc CPU counters. */
  ticksPerSecond: number;
  backends: Backends;
  /** Raw numbers by phase, for the JSON file. */
  details: Record<string, unknown>;
  /** What relay and agent logged in each phase after they were ready (at warn level, only the
   * unexpected), for the JSON file. */
  logs: Record<string, string[]>;
}

/** Runs `work` with a fresh tunnel to `services`; records what relay and agent logged. */
async function withTunnel<T>(
  bench: Bench,
  phase: string,
  services: Record<string, number>,
  work: (tunnel: Tunnel) => Promise<T>,
): Promise<T> {
  const tunnel = await startTunnel(services, bench.secret);
  try {
    return await work(tunnel);
  } finally {
    const log = tunnel.logSinceReady().slice(0, 50); // before stopping, which has its own
    for (const child of [tunnel.relay, tunnel.agent].filter((child) => child.exited)) {
      log.push(
        `${child.name} exited before the phase ended: ${JSON.stringify(await child.status)}`,
      );
    }
    if (log.length > 0) bench.logs[phase] = log;
    await tunnel.stop();
  }
}

/** 1 and 3: iperf3 with 1 and 4 streams, 1 GiB into the sink, and CPU per GiB. */
export async function throughput(bench: Bench): Promise<Measure[]> {
  const iperf = await startIperfServer();
  try {
    const { echo, sink } = bench.backends;
    return await withTunnel(
      bench,
      "throughput",
      { iperf: iperf.port, sink, echo },
      async (tunnel) => {
        const ports = { direct: iperf.port, tunnel: tunnel.ports.iperf };
        return [
          await iperfMeasure(bench, ports, 1, TARGETS.iperfSingleStream),
          await iperfMeasure(bench, ports, 4),
          ...await sinkMeasures(bench, tunnel),
        ];
      },
    );
  } finally {
    await iperf.child.stop();
  }
}

/** Values of each round of a throughput probe. */
type Rounds = { direct: number[]; tunnel: number[] };

/**
 * Runs `direct` and `tunneled` {@link ROUNDS} times, taking turns, adding each value to `rounds`;
 * resolves with the median of each.
 */
async function medians(
  rounds: Rounds,
  direct: () => Promise<number>,
  tunneled: () => Promise<number>,
): Promise<{ direct: number; tunnel: number }> {
  for (let round = 0; round < ROUNDS; round++) {
    rounds.direct.push(await direct());
    rounds.tunnel.push(await tunneled());
  }
  const median = (values: number[]) => percentile(values.toSorted((a, b) => a - b), 0.5);
  return { direct: median(rounds.direct), tunnel: median(rounds.tunnel) };
}

async function iperfMeasure(
  bench: Bench,
  ports: { direct: number; tunnel: number },
  streams: number,
  target?: Target,
): Promise<Measure> {
  const name = `iperf3, ${streams} stream${streams === 1 ? "" : "s"}`;
  const measure: Measure = { name, unit: "Gbit/s", better: "higher", tunnel: NaN, target };
  const rounds: Rounds = { direct: [], tunnel: [] };
  bench.details[name] = rounds;
  try {
    const gbits = (port: number) => async () => await iperf3(port, streams, IPERF_SECONDS) / 1e9;
    const result = await medians(rounds, gbits(ports.direct), gbits(ports.tunnel));
    measure.direct = result.direct;
    measure.tunnel = result.tunnel;
  } catch (error) {
    measure.problem = (error as Error).message;
  }
  return measure;
}

async function sinkMeasures(bench: Bench, tunnel: Tunnel): Promise<Measure[]> {
  const transfer: Measure = {
    name: "1 GiB one way into the sink",
    unit: "MiB/s",
    better: "higher",
    tunnel: NaN,
    target: TARGETS.sink,
  };
  const cpu: Measure = {
    name: "CPU per GiB, relay + agent",
    unit: "s",
    better: "lower",
    tunnel: NaN,
    target: TARGETS.cpuPerGiBSeconds,
  };
  const miscounts: string[] = [];
  const mibPerSecond: Rounds = { direct: [], tunnel: [] };
  const details: Record<string, unknown> = { bytes: SINK_BYTES, mibPerSecond };
  bench.details.sink = details;
  let ticks = 0;
  /** MiB/s of one transfer to `port`; tunneled ones add to `ticks`. */
  const rate = (port: number) => async () => {
    const before = tunnel.cpuTicks();
    const result = await sinkTransfer(port, SINK_BYTES, SINK_TIMEOUT_MS);
    if (port === tunnel.ports.sink) {
      await sleep(SETTLE_MS);
      ticks += tunnel.cpuTicks() - before;
    }
    if (result.counted !== SINK_BYTES) miscounts.push(`${result.counted} of ${SINK_BYTES}`);
    return SINK_BYTES / MIB / result.seconds;
  };
  try {
    const direct = bench.backends.sink;
    await sinkTransfer(direct, SINK_WARMUP_BYTES, SINK_TIMEOUT_MS);
    await sinkTransfer(tunnel.ports.sink, SINK_WARMUP_BYTES, SINK_TIMEOUT_MS);
    const result = await medians(mibPerSecond, rate(direct), rate(tunnel.ports.sink));
    const cpuSeconds = ticks / bench.ticksPerSecond;
    details.cpuSeconds = cpuSeconds;
    transfer.direct = result.direct;
    transfer.tunnel = result.tunnel;
    if (miscounts.length > 0) transfer.problem = `the sink counted ${miscounts.join(", ")} bytes`;
    cpu.tunnel = cpuSeconds / (ROUNDS * SINK_BYTES / 2 ** 30);
  } catch (error) {
    transfer.problem = cpu.problem = (error as Error).message;
  }
  return [transfer, cpu];
}

/** 2 and 3: sequential fresh connections, their rate and latency, and CPU per connection. */
export function setup(bench: Bench): Promise<Measure[]> {
  const { echo } = bench.backends;
  return withTunnel(bench, "setup", { echo }, async (tunnel) => {
    await sequentialConnections(echo, WARMUP_CONNECTIONS);
    await sequentialConnections(tunnel.ports.echo, WARMUP_CONNECTIONS);
    const direct = await sequentialConnections(echo, SEQUENTIAL_CONNECTIONS);
    const ticks = tunnel.cpuTicks();
    const tunneled = await sequentialConnections(tunnel.ports.echo, SEQUENTIAL_CONNECTIONS);
    await sleep(SETTLE_MS);
    const cpuSeconds = (tunnel.cpuTicks() - ticks) / bench.ticksPerSecond;
    const summary = (result: SetupResult) => ({
      seconds: result.seconds,
      failed: result.failed,
      firstError: result.firstError,
      minMs: result.latenciesMs[0],
      maxMs: result.latenciesMs.at(-1),
    });
    bench.details.setup = { direct: summary(direct), tunnel: summary(tunneled), cpuSeconds };
    const rate = (result: SetupResult) => result.latenciesMs.length / result.seconds;
    const latency = (name: string, fraction: number, target?: Target): Measure => ({
      name: `setup: latency ${name}`,
      unit: "ms",
      better: "lower",
      direct: percentile(direct.latenciesMs, fraction),
      tunnel: percentile(tunneled.latenciesMs, fraction),
      target,
    });
    return [
      {
        name: `setup: ${SEQUENTIAL_CONNECTIONS.toLocaleString("en")} sequential connections`,
        unit: "conn/s",
        better: "higher",
        direct: rate(direct),
        tunnel: rate(tunneled),
        target: TARGETS.connectionsPerSecond,
      },
      latency("p50", 0.5, TARGETS.latencyP50),
      latency("p90", 0.9),
      latency("p99", 0.99, TARGETS.latencyP99),
      {
        name: "setup: CPU per connection, relay + agent",
        unit: "µs",
        better: "lower",
        tunnel: cpuSeconds / SEQUENTIAL_CONNECTIONS * 1e6,
        target: TARGETS.cpuPerConnectionMicros,
      },
      {
        name: "setup: failed",
        unit: "conn",
        better: "lower",
        direct: direct.failed,
        tunnel: tunneled.failed,
        target: TARGETS.failures,
      },
    ];
  });
}

/** Connections every process involved can hold at once, within {@link MAX_HELD_CONNECTIONS}. */
function heldLimit(bench: Bench, tunnel: Tunnel): number {
  // Relay and agent hold two sockets per connection, the load and the backends one.
  const perConnection = new Map([
    [tunnel.relay.pid, 2],
    [tunnel.agent.pid, 2],
    [Deno.pid, 1],
    [bench.backends.child.pid, 1],
  ]);
  const limits = [...perConnection].map(([pid, sockets]) =>
    Math.floor((openFileLimit(pid) - FD_MARGIN) / sockets)
  );
  return Math.min(MAX_HELD_CONNECTIONS, ...limits);
}

/**
 * 4: `wanted` connections held open at once (or as many as the fd limits allow): failures,
 * relay and agent RSS before and at the peak, and memory per connection. Resolves with no rows
 * when the limits allow no more than `atLeast` connections (the burst already measured).
 */
export function concurrency(
  bench: Bench,
  wanted: number | "fd limit",
  atLeast = 0,
): Promise<Measure[]> {
  const { echo } = bench.backends;
  return withTunnel(bench, `held ${wanted}`, { echo }, async (tunnel) => {
    const limit = heldLimit(bench, tunnel);
    const count = wanted === "fd limit" ? limit : Math.min(wanted, limit);
    if (count <= atLeast) return [];
    const backend = watchRss({ echo: bench.backends.child.pid });
    const direct = await holdConnections(echo, count, HOLD_PAUSE_MS).finally(backend.stop);
    await sequentialConnections(tunnel.ports.echo, WARMUP_CONNECTIONS);
    await sleep(1_000);
    const rss = watchRss({ relay: tunnel.relay.pid, agent: tunnel.agent.pid });
    const ticks = tunnel.cpuTicks();
    const held = await holdConnections(tunnel.ports.echo, count, HOLD_PAUSE_MS)
      .finally(rss.stop);
    const cpuSeconds = (tunnel.cpuTicks() - ticks) / bench.ticksPerSecond;
    const { idle, peak } = rss;
    bench.details[`held ${count}`] = {
      direct,
      tunnel: held,
      idle,
      peak,
      cpuSeconds,
      // For comparison: what the backends (a plain Deno echo server) needed per connection.
      backendsPerConnectionKiB: (backend.peak.echo - backend.idle.echo) / KIB / count,
    };
    const label = `held ${count.toLocaleString("en")}`;
    const budget = wanted === HELD_CONNECTIONS;
    const memory = (who: "relay" | "agent"): Measure[] => [{
      name: `${label}: ${who} RSS idle → peak`,
      unit: "MiB",
      better: "lower",
      idle: idle[who] / MIB,
      tunnel: peak[who] / MIB,
      target: budget ? TARGETS.rssMiB : undefined,
    }, {
      name: `${label}: ${who} memory per connection`,
      unit: "KiB",
      better: "lower",
      tunnel: (peak[who] - idle[who]) / KIB / count,
      target: budget ? TARGETS.perConnectionKiB : undefined,
    }];
    return [
      {
        name: `${label}: opened in`,
        unit: "s",
        better: "lower",
        direct: direct.openSeconds,
        tunnel: held.openSeconds,
      },
      {
        name: `${label}: failed`,
        unit: "conn",
        better: "lower",
        direct: direct.failed,
        tunnel: held.failed,
        target: TARGETS.failures,
        problem: held.firstError && `first failure: ${held.firstError}`,
      },
      ...memory("relay"),
      ...memory("agent"),
    ];
  });
}
