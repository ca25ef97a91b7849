/**
 * 9: new connections on a slow link. A forwarder between agent and relay delays each direction
 * by {@link ONE_WAY_DELAY_MS} and charges a new connection the round trip of its TCP handshake
 * (a forwarder on loopback accepts at once, so without that charge a handshake would cost
 * nothing): the agent's first bytes on a connection arrive 1.5 round trips after it connects, as
 * they would across the internet. Clients and services stay on loopback, so every figure is in
 * round trips of the agent-relay link, what a client waits for because of the tunnel:
 *
 * - fresh connections one after another (connect, 1-byte echo, close): p50 and p90;
 * - a burst of 8 at once after {@link IDLE_BEFORE_BURST_MS} of no traffic (a page load): p50, max;
 * - a steady {@link STEADY_PER_SECOND} new connections per second for 10 s: p50 and p99.
 *
 * Plain and TLS, each through a tunnel of its own.
 */

import { type Bench, TARGETS } from "./phases.ts";
import { echoOnce, percentile } from "./probes.ts";
import { sleep } from "./procs.ts";
import type { Measure, Target } from "./report.ts";
import { startTunnel } from "./tunnel.ts";
import { closeQuietly, writeAll } from "../lib/net.ts";

/** One-way delay of the agent-relay link. */
export const ONE_WAY_DELAY_MS = 25;
/** Fresh connections one after another (after 5 unmeasured ones). */
export const SEQUENTIAL = 40;
/** The burst, and the quiet before it. */
export const BURST = 8;
export const IDLE_BEFORE_BURST_MS = 60_000;
/** The steady rate, and for how long. */
export const STEADY_PER_SECOND = 20;
export const STEADY_SECONDS = 10;

const ROUND_TRIP_MS = 2 * ONE_WAY_DELAY_MS;

/**
 * A TCP forwarder from a port of its own to `target`, delaying each direction by `delayMs`, and
 * the first bytes from a new client by a handshake's round trip more.
 */
export function startDelayForwarder(target: number, delayMs: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  (async () => {
    for await (const client of listener) {
      const accepted = performance.now();
      Deno.connect({ hostname: "127.0.0.1", port: target }).then((server) => {
        for (const conn of [client, server]) {
          conn.setNoDelay(true);
          open.add(conn);
        }
        const handshake = accepted + 3 * delayMs; // SYN, SYN-ACK, then the first bytes' way
        Promise.all([
          delayed(client, server, delayMs, handshake),
          delayed(server, client, delayMs, 0),
        ]).catch(() => {}).finally(() => {
          for (const conn of [client, server]) {
            closeQuietly(conn);
            open.delete(conn);
          }
        });
      }, () => closeQuietly(client));
    }
  })().catch(() => {});
  return {
    port: listener.addr.port,
    stop() {
      closeQuietly(listener);
      for (const conn of open) closeQuietly(conn);
    },
  };
}

/** Copies `from` to `to`, each chunk (and the end) written `delayMs` after it was read. */
async function delayed(from: Deno.Conn, to: Deno.Conn, delayMs: number, notBefore: number) {
  let queue = Promise.resolve();
  let failed = false;
  const at = (due: number, step: () => Promise<void>) => {
    queue = queue.then(() => sleep(Math.max(0, due - performance.now()))).then(step)
      .catch(() => void (failed = true)); // the other side is gone; the reads end too
  };
  const buffer = new Uint8Array(64 * 1024);
  for (let count; !failed && (count = await from.read(buffer)) !== null;) {
    const chunk = buffer.slice(0, count);
    at(Math.max(performance.now() + delayMs, notBefore), () => writeAll(to, chunk));
  }
  at(performance.now() + delayMs, () => to.closeWrite());
  await queue;
  if (failed) throw new Error("the connection broke");
}

/** Round trips taken by one fresh connection with a 1-byte echo. */
async function roundTrips(port: number): Promise<number> {
  const started = performance.now();
  await echoOnce(port);
  return (performance.now() - started) / ROUND_TRIP_MS;
}

/** 9: plain and TLS, each measured through its own tunnel behind the delay forwarder. */
export async function slowLink(bench: Bench): Promise<Measure[]> {
  const measures: Measure[] = [];
  for (const tls of [false, true]) {
    const forwarders: { stop(): void }[] = [];
    const tunnel = await startTunnel({ echo: bench.backends.echo }, bench.secret, tls, {
      via: (relayPort) => {
        const forwarder = startDelayForwarder(relayPort, ONE_WAY_DELAY_MS);
        forwarders.push(forwarder);
        return forwarder.port;
      },
    });
    try {
      const port = tunnel.ports.echo;
      for (let i = 0; i < 5; i++) await roundTrips(port);
      const sequential: number[] = [];
      for (let i = 0; i < SEQUENTIAL; i++) sequential.push(await roundTrips(port));
      await sleep(IDLE_BEFORE_BURST_MS);
      const burst = await Promise.all(Array.from({ length: BURST }, () => roundTrips(port)));
      const steady: Promise<number>[] = [];
      for (let i = 0; i < STEADY_PER_SECOND * STEADY_SECONDS; i++) {
        steady.push(roundTrips(port));
        await sleep(1000 / STEADY_PER_SECOND);
      }
      const sorted = {
        sequential: sequential.toSorted((a, b) => a - b),
        burst: burst.toSorted((a, b) => a - b),
        steady: (await Promise.all(steady)).toSorted((a, b) => a - b),
      };
      bench.details[`slowLink${tls ? "Tls" : ""}`] = sorted;
      /** A row; the targets are set for TLS, porthole's default. */
      const row = (name: string, value: number, target?: Target): Measure => ({
        name: `slow link${tls ? ", TLS" : ""}: ${name}`,
        unit: "round trips",
        better: "lower",
        tunnel: value,
        target: tls ? target : undefined,
      });
      const { slowLinkP50, slowLinkP99, slowLinkBurst } = TARGETS;
      const p = (values: number[], at: number) => percentile(values, at);
      const idle = `${IDLE_BEFORE_BURST_MS / 1000} s idle`;
      const steadyName = `${STEADY_PER_SECOND} new connections a second`;
      measures.push(
        row("fresh connections one by one, p50", p(sorted.sequential, 0.5), slowLinkP50),
        row("fresh connections one by one, p90", p(sorted.sequential, 0.9)),
        row(`burst of ${BURST} after ${idle}, p50`, p(sorted.burst, 0.5), slowLinkBurst),
        row(`burst of ${BURST} after ${idle}, max`, sorted.burst.at(-1)!),
        row(`${steadyName}, p50`, p(sorted.steady, 0.5), slowLinkP50),
        row(`${steadyName}, p99`, p(sorted.steady, 0.99), slowLinkP99),
      );
    } finally {
      await tunnel.stop();
      forwarders.forEach((forwarder) => forwarder.stop());
    }
  }
  return measures;
}
