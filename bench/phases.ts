/**
 * The data-plane measures (1–4 and 6 in bench/README.md). Each phase starts a relay and an agent
 * of its own, so one phase's leftovers (heap, buffers, TIME_WAIT sockets) do not weigh on the
 * next, runs a probe directly against the backend and then the same probe through the tunnel,
 * and returns the rows of the table. Phases 1, 2 and the first of 4 also start a second pair with
 * TLS between them (measure 6) and run the same probes through it, compared with the plain tunnel.
 */

import {
  holdConnections,
  iperf3,
  percentile,
  sequentialConnections,
  type SetupResult,
  sinkTransfer,
  sourceTransfer,
} from "./probes.ts";
import { openFds, openFileLimit, sleep, watchFds, watchRss } from "./procs.ts";
import type { Measure, Target } from "./report.ts";
import { type Backends, startFloor, startIperfServer, startTunnel, type Tunnel } from "./tunnel.ts";

/** Times each throughput probe runs, taking turns direct and tunneled; the median counts. */
export const ROUNDS = 3;
/** Length of each iperf3 run, after one omitted second of slow start. */
export const IPERF_SECONDS = 5;
/** Bytes sent one way, into the sink or from the source. */
export const BULK_BYTES = 2 ** 30;
/** Bytes sent once before, so that both paths are warm (JIT, buffer pool). */
export const BULK_WARMUP_BYTES = 64 * 2 ** 20;
/** Longest a transfer to the sink or from the source may take. */
export const BULK_TIMEOUT_MS = 120_000;
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
  bulkTransfer: { of: "ratio", value: 0.3 },
  connectionsPerSecond: { of: "ratio", value: 0.45 },
  latencyP50: { of: "ratio", value: 2.2 },
  latencyP99: { of: "ratio", value: 3 },
  cpuPerConnectionMicros: { of: "tunnel", value: 650 },
  cpuPerGiBSeconds: { of: "tunnel", value: 1.5 },
  rssMiB: { of: "tunnel", value: 64 },
  perConnectionKiB: { of: "tunnel", value: 16 },
  failures: { of: "tunnel", value: 0 },
  /** 6: the TLS tunnel ÷ the plain one. */
  tlsThroughput: { of: "ratio", value: 0.8 },
  tlsConnectionsPerSecond: { of: "ratio", value: 0.5 },
  /** 7: the HTTP front ÷ the port front. */
  namedConnections: { of: "ratio", value: 0.9 },
  namedKeepAlive: { of: "ratio", value: 0.95 },
  /** 8: the WebSocket transport ÷ TLS. */
  webSocketThroughput: { of: "ratio", value: 0.9 },
  /** 9: round trips of the agent-relay link a new connection waits, with TLS. */
  slowLinkP50: { of: "tunnel", value: 1.15 },
  slowLinkP99: { of: "tunnel", value: 2 },
  slowLinkBurst: { of: "tunnel", value: 1.2 },
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

/**
 * Runs `work` with a fresh tunnel to `services` (TLS with `tls`); records what relay and agent
 * logged under `phase`.
 */
async function withTunnel<T>(
  bench: Bench,
  phase: string,
  services: Record<string, number>,
  work: (tunnel: Tunnel) => Promise<T>,
  tls = false,
): Promise<T> {
  const tunnel = await startTunnel(services, bench.secret, tls);
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

/** A plain-TCP tunnel and, for measure 6, a TLS tunnel to the same services. */
interface Tunnels {
  plain: Tunnel;
  tls: Tunnel;
}

/** Runs `work` with two fresh tunnels to `services`, one plain, one TLS. */
function withTunnels<T>(
  bench: Bench,
  phase: string,
  services: Record<string, number>,
  work: (tunnels: Tunnels) => Promise<T>,
): Promise<T> {
  return withTunnel(
    bench,
    phase,
    services,
    (plain) =>
      withTunnel(bench, `${phase} over TLS`, services, (tls) => work({ plain, tls }), true),
  );
}

/**
 * 1, 3 and 6: iperf3 with 1 and 4 streams and with 1 stream reversed, 1 GiB into the sink and 1 GiB
 * from the source, and CPU per GiB, each directly,
 * through the plain tunnel and through the TLS tunnel.
 */
export async function throughput(bench: Bench): Promise<Measure[]> {
  const iperf = await startIperfServer();
  try {
    const { echo, sink, source } = bench.backends;
    return await withTunnels(
      bench,
      "throughput",
      { iperf: iperf.port, sink, source, echo },
      async (tunnels) => {
        const ports: Record<Path, number> = {
          direct: iperf.port,
          tunnel: tunnels.plain.ports.iperf,
          tls: tunnels.tls.ports.iperf,
        };
        return [
          ...await iperfMeasures(bench, ports, 1, TARGETS.iperfSingleStream, TARGETS.tlsThroughput),
          ...await iperfMeasures(bench, ports, 4),
          ...await iperfMeasures(
            bench,
            ports,
            1,
            TARGETS.iperfSingleStream,
            TARGETS.tlsThroughput,
            "reverse",
          ),
          ...await bulkMeasures(bench, tunnels, "sink"),
          ...await bulkMeasures(bench, tunnels, "source"),
        ];
      },
    );
  } finally {
    await iperf.child.stop();
  }
}

/** How a probe reaches the backend: directly, through the plain tunnel, through the TLS one. */
type Path = "direct" | "tunnel" | "tls";
const PATHS: Path[] = ["direct", "tunnel", "tls"];

/** Values of each round of a throughput probe, by path. */
type Rounds = Record<Path, number[]>;

/**
 * Runs the probe of each path {@link ROUNDS} times, taking turns, adding each value to `rounds`;
 * resolves with the median of each path.
 */
async function medians(
  rounds: Rounds,
  probes: Record<Path, () => Promise<number>>,
): Promise<Record<Path, number>> {
  for (let round = 0; round < ROUNDS; round++) {
    for (const path of PATHS) rounds[path].push(await probes[path]());
  }
  const median = (values: number[]) => percentile(values.toSorted((a, b) => a - b), 0.5);
  return { direct: median(rounds.direct), tunnel: median(rounds.tunnel), tls: median(rounds.tls) };
}

/** The measure 6 row of `plain`: TLS ÷ plain tunnel. */
function overTls(plain: Measure, tls: number, target?: Target): Measure {
  return {
    name: `TLS: ${plain.name}`,
    unit: plain.unit,
    better: plain.better,
    tls: true,
    direct: plain.tunnel,
    tunnel: tls,
    target,
    problem: plain.problem,
  };
}

/**
 * iperf3 with `streams` streams on each path: client to server, or with "reverse" server to client
 * (what a tunnel mostly carries: downloads, pages, query results).
 */
async function iperfMeasures(
  bench: Bench,
  ports: Record<Path, number>,
  streams: number,
  target?: Target,
  tlsTarget?: Target,
  direction: "forward" | "reverse" = "forward",
): Promise<Measure[]> {
  const name = `iperf3, ${streams} stream${streams === 1 ? "" : "s"}${
    direction === "reverse" ? ", server to client (-R)" : ""
  }`;
  const measure: Measure = { name, unit: "Gbit/s", better: "higher", tunnel: NaN, target };
  const rounds: Rounds = { direct: [], tunnel: [], tls: [] };
  bench.details[name] = rounds;
  let tls = NaN;
  try {
    const gbits = (path: Path) => async () =>
      await iperf3(ports[path], streams, IPERF_SECONDS, direction === "reverse") / 1e9;
    const result = await medians(rounds, {
      direct: gbits("direct"),
      tunnel: gbits("tunnel"),
      tls: gbits("tls"),
    });
    measure.direct = result.direct;
    measure.tunnel = result.tunnel;
    tls = result.tls;
  } catch (error) {
    measure.problem = (error as Error).message;
  }
  return [measure, overTls(measure, tls, tlsTarget)];
}

/**
 * 1 GiB into the sink (client to server) or from the source (server to client) on each path: MiB/s,
 * and CPU of relay and agent per GiB.
 */
async function bulkMeasures(
  bench: Bench,
  tunnels: Tunnels,
  backend: "sink" | "source",
): Promise<Measure[]> {
  const towardServer = backend === "sink";
  const transfer: Measure = {
    name: towardServer ? "1 GiB one way into the sink" : "1 GiB one way from the source",
    unit: "MiB/s",
    better: "higher",
    tunnel: NaN,
    target: TARGETS.bulkTransfer,
  };
  const cpu: Measure = {
    name: `CPU per GiB, relay + agent${towardServer ? "" : ", server to client"}`,
    unit: "s",
    better: "lower",
    tunnel: NaN,
    target: TARGETS.cpuPerGiBSeconds,
  };
  const move = towardServer ? sinkTransfer : sourceTransfer;
  const miscounts: string[] = [];
  const mibPerSecond: Rounds = { direct: [], tunnel: [], tls: [] };
  const cpuSeconds = { tunnel: 0, tls: 0 };
  const details: Record<string, unknown> = { bytes: BULK_BYTES, mibPerSecond, cpuSeconds };
  bench.details[backend] = details;
  const ports: Record<Path, number> = {
    direct: bench.backends[backend],
    tunnel: tunnels.plain.ports[backend],
    tls: tunnels.tls.ports[backend],
  };
  /** MiB/s of one transfer along `path`; tunneled ones add to its `cpuSeconds`. */
  const rate = (path: Path) => async () => {
    const tunnel = path === "tunnel" ? tunnels.plain : path === "tls" ? tunnels.tls : undefined;
    const before = tunnel?.cpuTicks() ?? 0;
    const result = await move(ports[path], BULK_BYTES, BULK_TIMEOUT_MS);
    if (tunnel && path !== "direct") {
      await sleep(SETTLE_MS);
      cpuSeconds[path] += (tunnel.cpuTicks() - before) / bench.ticksPerSecond;
    }
    if (result.counted !== BULK_BYTES) {
      miscounts.push(`${result.counted} of ${BULK_BYTES} (${path})`);
    }
    return BULK_BYTES / MIB / result.seconds;
  };
  let tls = { transfer: NaN, cpu: NaN };
  try {
    for (const path of PATHS) await move(ports[path], BULK_WARMUP_BYTES, BULK_TIMEOUT_MS);
    const result = await medians(mibPerSecond, {
      direct: rate("direct"),
      tunnel: rate("tunnel"),
      tls: rate("tls"),
    });
    const gib = ROUNDS * BULK_BYTES / 2 ** 30;
    transfer.direct = result.direct;
    transfer.tunnel = result.tunnel;
    cpu.tunnel = cpuSeconds.tunnel / gib;
    tls = { transfer: result.tls, cpu: cpuSeconds.tls / gib };
    if (miscounts.length > 0) {
      const counted = towardServer ? "the sink counted" : "the client received";
      transfer.problem = `${counted} ${miscounts.join(", ")} bytes`;
    }
  } catch (error) {
    transfer.problem = cpu.problem = (error as Error).message;
  }
  return [
    transfer,
    cpu,
    overTls(transfer, tls.transfer, TARGETS.tlsThroughput),
    overTls(cpu, tls.cpu),
  ];
}

/** Longest wait after a run of connections for relay and agent to close what they hold. */
const LINGER_MAX_MS = 15_000;

/** A run of sequential connections through a tunnel, with what it cost relay and agent. */
interface TunneledRun {
  result: SetupResult;
  cpuSeconds: number;
  /** Open descriptors of relay and agent before the run and at most during it. */
  fds: { before: Record<"relay" | "agent", number>; peak: Record<"relay" | "agent", number> };
  /** Seconds after the run until relay and agent were back to their descriptors before it. */
  lingerSeconds: number;
}

/**
 * `count` sequential connections through `tunnel`. CPU is read once relay and agent have closed
 * the connections' sockets (a closed TLS socket can stay open for seconds), or after
 * {@link LINGER_MAX_MS}.
 */
async function tunneledRun(bench: Bench, tunnel: Tunnel, count: number): Promise<TunneledRun> {
  const fds = watchFds({ relay: tunnel.relay.pid, agent: tunnel.agent.pid });
  const ticks = tunnel.cpuTicks();
  const result = await sequentialConnections(tunnel.ports.echo, count);
  await sleep(SETTLE_MS);
  const lingerSeconds = SETTLE_MS / 1000 + await fdsBackTo(tunnel, fds.idle);
  fds.stop();
  const cpuSeconds = (tunnel.cpuTicks() - ticks) / bench.ticksPerSecond;
  return { result, cpuSeconds, fds: { before: fds.idle, peak: fds.peak }, lingerSeconds };
}

/** Connections a setup run made, whether they succeeded or failed. */
function attempted(result: SetupResult): number {
  return result.latenciesMs.length + result.failed;
}

/** Open descriptors of relay and agent now. */
function fdsOf(tunnel: Tunnel): Record<"relay" | "agent", number> {
  return { relay: openFds(tunnel.relay.pid), agent: openFds(tunnel.agent.pid) };
}

/**
 * Waits until relay and agent hold no more descriptors than `baseline` (closed TLS sockets can
 * linger for seconds), at most {@link LINGER_MAX_MS}; returns the seconds it waited.
 */
async function fdsBackTo(tunnel: Tunnel, baseline: Record<"relay" | "agent", number>) {
  const started = performance.now();
  const settled = () => {
    const now = fdsOf(tunnel);
    return now.relay <= baseline.relay && now.agent <= baseline.agent;
  };
  while (!settled() && performance.now() - started < LINGER_MAX_MS) await sleep(100);
  return (performance.now() - started) / 1000;
}

/** A warm-up through `tunnel`, after which its sockets are closed again. */
async function warmUp(tunnel: Tunnel): Promise<void> {
  const before = fdsOf(tunnel);
  await sequentialConnections(tunnel.ports.echo, WARMUP_CONNECTIONS);
  await fdsBackTo(tunnel, before);
}

/**
 * {@link SEQUENTIAL_CONNECTIONS} through bench/floor.ts (porthole's hops on bare sockets), with
 * the CPU its relay and agent used.
 */
async function floorRun(bench: Bench, echo: number) {
  const floor = await startFloor(echo);
  try {
    await sequentialConnections(floor.port, WARMUP_CONNECTIONS);
    const ticks = floor.cpuTicks();
    const result = await sequentialConnections(floor.port, SEQUENTIAL_CONNECTIONS);
    return { result, cpuSeconds: (floor.cpuTicks() - ticks) / bench.ticksPerSecond };
  } finally {
    await floor.stop();
  }
}

/**
 * Sequential connections the TLS tunnel can take within the open-file limits of relay and agent,
 * should every closed TLS data channel stay open until the run ends (each holds one descriptor
 * in each).
 */
function tlsSequentialLimit(tunnel: Tunnel): number {
  const limits = [tunnel.relay.pid, tunnel.agent.pid].map((pid) => openFileLimit(pid) - FD_MARGIN);
  return Math.min(SEQUENTIAL_CONNECTIONS, ...limits);
}

/**
 * 2, 3 and 6: sequential fresh connections, their rate and latency, and CPU per connection,
 * directly, through the plain tunnel, then through the TLS tunnel.
 */
export function setup(bench: Bench): Promise<Measure[]> {
  const { echo } = bench.backends;
  return withTunnels(bench, "setup", { echo }, async (tunnels) => {
    await sequentialConnections(echo, WARMUP_CONNECTIONS);
    await warmUp(tunnels.plain);
    const direct = await sequentialConnections(echo, SEQUENTIAL_CONNECTIONS);
    const plain = await tunneledRun(bench, tunnels.plain, SEQUENTIAL_CONNECTIONS);
    const floor = await floorRun(bench, echo);
    // TLS last, so that its sockets, however long they linger, weigh on no other run.
    await warmUp(tunnels.tls);
    const tls = await tunneledRun(bench, tunnels.tls, tlsSequentialLimit(tunnels.tls));
    const summary = (result: SetupResult) => ({
      seconds: result.seconds,
      failed: result.failed,
      firstError: result.firstError,
      minMs: result.latenciesMs[0],
      maxMs: result.latenciesMs.at(-1),
    });
    const run = ({ result, ...rest }: TunneledRun) => ({ ...summary(result), ...rest });
    bench.details.setup = {
      direct: summary(direct),
      tunnel: run(plain),
      floor: { ...summary(floor.result), cpuSeconds: floor.cpuSeconds },
      tls: { connections: attempted(tls.result), ...run(tls) },
    };
    const rate = (result: SetupResult) => result.latenciesMs.length / result.seconds;
    const latency = (name: string, fraction: number, target?: Target): Measure => ({
      name: `setup: latency ${name}`,
      unit: "ms",
      better: "lower",
      direct: percentile(direct.latenciesMs, fraction),
      tunnel: percentile(plain.result.latenciesMs, fraction),
      target,
    });
    const tlsLatency = (plainRow: Measure, fraction: number) =>
      overTls(plainRow, percentile(tls.result.latenciesMs, fraction));
    const perConnection = (run: TunneledRun) => run.cpuSeconds / attempted(run.result) * 1e6;
    const rows: Measure[] = [
      {
        name: `setup: ${SEQUENTIAL_CONNECTIONS.toLocaleString("en")} sequential connections`,
        unit: "conn/s",
        better: "higher",
        direct: rate(direct),
        tunnel: rate(plain.result),
        target: TARGETS.connectionsPerSecond,
      },
      latency("p50", 0.5, TARGETS.latencyP50),
      latency("p90", 0.9),
      latency("p99", 0.99, TARGETS.latencyP99),
      {
        name: "setup: CPU per connection, relay + agent",
        unit: "µs",
        better: "lower",
        tunnel: perConnection(plain),
        target: TARGETS.cpuPerConnectionMicros,
      },
      {
        name: "setup: failed",
        unit: "conn",
        better: "lower",
        direct: direct.failed,
        tunnel: plain.result.failed,
        target: TARGETS.failures,
      },
    ];
    const floorRows: Measure[] = [
      {
        name: "setup: the same hops on bare sockets (floor.ts)",
        unit: "conn/s",
        better: "higher",
        direct: rate(direct),
        tunnel: rate(floor.result),
      },
      {
        name: "setup: bare sockets, latency p50",
        unit: "ms",
        better: "lower",
        direct: percentile(direct.latenciesMs, 0.5),
        tunnel: percentile(floor.result.latenciesMs, 0.5),
      },
      {
        name: "setup: bare sockets, CPU per connection",
        unit: "µs",
        better: "lower",
        tunnel: floor.cpuSeconds / SEQUENTIAL_CONNECTIONS * 1e6,
      },
    ];
    const [connections, p50, , p99, cpu, failed] = rows;
    const tlsCount = attempted(tls.result);
    return [
      ...rows,
      ...floorRows,
      {
        ...overTls(connections, rate(tls.result), TARGETS.tlsConnectionsPerSecond),
        name: `TLS: setup: ${tlsCount.toLocaleString("en")} sequential connections`,
      },
      tlsLatency(p50, 0.5),
      tlsLatency(p99, 0.99),
      overTls(cpu, perConnection(tls)),
      {
        ...overTls(failed, tls.result.failed, TARGETS.failures),
        problem: tls.result.firstError && `first failure: ${tls.result.firstError}`,
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
    const { held, idle, peak, cpuSeconds } = await holdThrough(bench, tunnel, count);
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
    const rows: Measure[] = [
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
    if (!budget) return rows;
    // 6: the same through a TLS tunnel, per connection against the plain one.
    const tls = await withTunnel(
      bench,
      `held ${count} over TLS`,
      { echo },
      (tlsTunnel) => holdThrough(bench, tlsTunnel, count),
      true,
    );
    bench.details[`held ${count} over TLS`] = tls;
    const perConnectionOverTls = (who: "relay" | "agent") =>
      overTls(memory(who)[1], (tls.peak[who] - tls.idle[who]) / KIB / count);
    return [
      ...rows,
      perConnectionOverTls("relay"),
      perConnectionOverTls("agent"),
      { ...overTls(rows[1], tls.held.failed, TARGETS.failures), problem: tls.held.firstError },
    ];
  });
}

/** Holds `count` connections through `tunnel` (after a warm-up), watching relay and agent. */
async function holdThrough(bench: Bench, tunnel: Tunnel, count: number) {
  await warmUp(tunnel);
  const rss = watchRss({ relay: tunnel.relay.pid, agent: tunnel.agent.pid });
  const ticks = tunnel.cpuTicks();
  const held = await holdConnections(tunnel.ports.echo, count, HOLD_PAUSE_MS).finally(rss.stop);
  const cpuSeconds = (tunnel.cpuTicks() - ticks) / bench.ticksPerSecond;
  return { held, idle: rss.idle, peak: rss.peak, cpuSeconds };
}
