/**
 * 8: the WebSocket transport against the TLS one it runs over. Two tunnels with TLS, one whose
 * agent reaches the relay as WebSocket upgrades (`--relay wss://…`), taking turns in the same run:
 * 1 GiB each way (from the source is what a tunnel mostly carries; the agent masks those frames)
 * and new connections one after another (each one an upgrade of its own). The ratio (WebSocket ÷
 * TLS) is what passing through HTTP-only networks costs.
 */

import { type Bench, ROUNDS, TARGETS } from "./phases.ts";
import { percentile, sequentialConnections, sinkTransfer, sourceTransfer } from "./probes.ts";
import type { Measure } from "./report.ts";
import { sleep } from "./procs.ts";
import { startTunnel, type Tunnel } from "./tunnel.ts";

/** Bytes of each transfer. */
export const WEBSOCKET_BULK_BYTES = 2 ** 30;
/** Fresh connections in each round of the setup probe. */
export const WEBSOCKET_CONNECTIONS = 1_000;
const TIMEOUT_MS = 120_000;
/** Pause after a transfer so that its teardown shows in the CPU counters. */
const SETTLE_MS = 300;
const MIB = 2 ** 20;

type Transport = "tls" | "webSocket";

/** The median of `probe` over {@link ROUNDS} rounds per transport, taking turns. */
async function medians(
  tunnels: Record<Transport, Tunnel>,
  probe: (tunnel: Tunnel) => Promise<number>,
): Promise<Record<Transport, number>> {
  const values: Record<Transport, number[]> = { tls: [], webSocket: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const transport of ["tls", "webSocket"] as const) {
      values[transport].push(await probe(tunnels[transport]));
    }
  }
  const median = (list: number[]) => percentile(list.toSorted((a, b) => a - b), 0.5);
  return { tls: median(values.tls), webSocket: median(values.webSocket) };
}

/** 8: WebSocket over TLS ÷ TLS, for bulk both ways and for new connections. */
export async function webSocket(bench: Bench): Promise<Measure[]> {
  const { sink, source, echo } = bench.backends;
  const services = { sink, source, echo };
  const tunnels = {
    tls: await startTunnel(services, bench.secret, true),
    webSocket: await startTunnel(services, bench.secret, true, { webSocket: true }),
  };
  try {
    const cpu = { source: new Map<Tunnel, number[]>(), sink: new Map<Tunnel, number[]>() };
    const rate = (backend: "sink" | "source") => async (tunnel: Tunnel) => {
      const move = backend === "sink" ? sinkTransfer : sourceTransfer;
      const before = tunnel.cpuTicks();
      const result = await move(tunnel.ports[backend], WEBSOCKET_BULK_BYTES, TIMEOUT_MS);
      if (result.counted !== WEBSOCKET_BULK_BYTES) {
        throw new Error(`${backend}: ${result.counted} of ${WEBSOCKET_BULK_BYTES} bytes arrived`);
      }
      await sleep(SETTLE_MS);
      const seconds = (tunnel.cpuTicks() - before) / bench.ticksPerSecond;
      cpu[backend].set(tunnel, [...cpu[backend].get(tunnel) ?? [], seconds]);
      return WEBSOCKET_BULK_BYTES / MIB / result.seconds;
    };
    /** CPU seconds per GiB of relay and agent together, the median of the rounds. */
    const cpuPerGiB = (backend: "sink" | "source") => {
      const of = (tunnel: Tunnel) => {
        const rounds = (cpu[backend].get(tunnel) ?? []).toSorted((a, b) => a - b);
        return percentile(rounds, 0.5) / (WEBSOCKET_BULK_BYTES / 2 ** 30);
      };
      return { tls: of(tunnels.tls), webSocket: of(tunnels.webSocket) };
    };
    const perSecond = async (tunnel: Tunnel) => {
      const result = await sequentialConnections(tunnel.ports.echo, WEBSOCKET_CONNECTIONS);
      if (result.failed > 0) throw new Error(`${result.failed} connections failed`);
      return WEBSOCKET_CONNECTIONS / result.seconds;
    };
    const fromSource = await medians(tunnels, rate("source"));
    const intoSink = await medians(tunnels, rate("sink"));
    const connections = await medians(tunnels, perSecond);
    const cpuSource = cpuPerGiB("source"), cpuSink = cpuPerGiB("sink");
    bench.details.webSocket = { fromSource, intoSink, connections, cpuSource, cpuSink };
    const row = (name: string, unit: string, values: Record<Transport, number>): Measure => ({
      name: `WebSocket ÷ TLS: ${name}`,
      unit,
      better: unit === "s" ? "lower" : "higher",
      direct: values.tls,
      tunnel: values.webSocket,
      target: unit === "MiB/s" ? TARGETS.webSocketThroughput : undefined,
    });
    return [
      row("1 GiB from the source", "MiB/s", fromSource),
      row("1 GiB into the sink", "MiB/s", intoSink),
      row("CPU per GiB from the source, relay + agent", "s", cpuSource),
      row("CPU per GiB into the sink, relay + agent", "s", cpuSink),
      row("new connections", "conn/s", connections),
    ];
  } finally {
    await Promise.all([tunnels.tls.stop(), tunnels.webSocket.stop()]);
  }
}
