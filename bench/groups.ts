/**
 * 10: agents in a group. One relay, and 1, 2 and then 3 agents serving the same two services
 * (`group = true` in the relay's config), each agent a process of its own: new connections
 * opened {@link PARALLEL_CLIENTS} at a time (connect, 1-byte echo, close), and iperf3 with
 * {@link IPERF_STREAMS} streams, each against the same probe on a direct connection in the same
 * round. The relay's `/status` says how the measured connections were shared among the members
 * (in the results' `details.groups`).
 */

import { type Bench, IPERF_SECONDS } from "./phases.ts";
import { echoOnce, iperf3 } from "./probes.ts";
import { removeLater, startPorthole } from "./procs.ts";
import type { Measure } from "./report.ts";
import { freePorts, PLAIN_TCP, retryUntil, startIperfServer } from "./tunnel.ts";

/** Group sizes measured, one after another, on the same relay. */
export const GROUP_SIZES = [1, 2, 3];
/** Fresh connections measured for each group size, after as many unmeasured ones. */
export const GROUP_CONNECTIONS = 2_000;
/** Clients opening connections at once. */
export const PARALLEL_CLIENTS = 8;
/** iperf3's parallel streams: with several, round robin gives each member some of them. */
export const IPERF_STREAMS = 6;

const CONFIG = `
[services.echo]
group = true
[services.bulk]
group = true
`;

/** Connections per second for `count` fresh connections, {@link PARALLEL_CLIENTS} at a time. */
async function parallelConnections(port: number, count: number): Promise<number> {
  let left = count;
  const started = performance.now();
  await Promise.all(Array.from({ length: PARALLEL_CLIENTS }, async () => {
    while (left-- > 0) await echoOnce(port);
  }));
  return count / ((performance.now() - started) / 1000);
}

/** The members of `service` the relay's admin API lists, with the clients each was given. */
async function members(admin: number, service: string): Promise<Record<string, number>> {
  const response = await fetch(`http://127.0.0.1:${admin}/status`);
  const status = await response.json();
  const entry = status.services.find((candidate: { id: string }) => candidate.id === service);
  return Object.fromEntries(
    (entry?.agents ?? []).map((agent: { id: string; connections: number }) => [
      agent.id,
      agent.connections,
    ]),
  );
}

/** 10: the same services served by a group of 1, 2 and 3 agents, against direct connections. */
export async function groups(bench: Bench): Promise<Measure[]> {
  const dir = await Deno.makeTempDir({ prefix: "porthole-bench-group-" });
  const temporary = removeLater(dir);
  await Deno.writeTextFile(`${dir}/relay.toml`, CONFIG);
  const iperf = await startIperfServer();
  const [relayPort, admin, echo, bulk] = freePorts(4);
  const relay = startPorthole("relay", [
    ...["--listen", `127.0.0.1:${relayPort}`, "--admin", `127.0.0.1:${admin}`, PLAIN_TCP],
    ...["--config", `${dir}/relay.toml`, "--log-level", "warn"],
    ...["--expose", `echo=127.0.0.1:${echo}`, "--expose", `bulk=127.0.0.1:${bulk}`],
  ], bench.secret);
  const children = [iperf.child, relay];
  const measures: Measure[] = [];
  const shares: Record<string, Record<string, number>> = {};
  try {
    await retryUntil("the relay", () => fetch(`http://127.0.0.1:${admin}/healthz`), children);
    for (const size of GROUP_SIZES) {
      while (children.length - 2 < size) {
        const id = `member-${children.length - 1}`;
        children.push(startPorthole("agent", [
          ...["--relay", `127.0.0.1:${relayPort}`, "--id", id, "--log-level", "warn", PLAIN_TCP],
          ...["--service", `bulk=127.0.0.1:${iperf.port}`],
          ...["--service", `echo=127.0.0.1:${bench.backends.echo}`],
        ], bench.secret));
        await retryUntil(`${id} in the group`, async () => {
          if (!(id in await members(admin, "echo"))) throw new Error(`${id} not listed yet`);
        }, children);
      }
      await retryUntil("the group", () => echoOnce(echo), children);
      await parallelConnections(bench.backends.echo, GROUP_CONNECTIONS); // warm-ups, unmeasured
      await parallelConnections(echo, GROUP_CONNECTIONS);
      const direct = await parallelConnections(bench.backends.echo, GROUP_CONNECTIONS);
      const before = await members(admin, "echo");
      const tunnel = await parallelConnections(echo, GROUP_CONNECTIONS);
      const after = await members(admin, "echo");
      const name = `group of ${size}`;
      shares[name] = Object.fromEntries(
        Object.entries(after).map((
          [id, count],
        ) => [id, (count - (before[id] ?? 0)) / GROUP_CONNECTIONS]),
      );
      measures.push({
        name: `${name}: new connections, ${PARALLEL_CLIENTS} clients at once`,
        unit: "conn/s",
        better: "higher",
        direct,
        tunnel,
      }, {
        name: `${name}: iperf3, ${IPERF_STREAMS} streams`,
        unit: "Gbit/s",
        better: "higher",
        direct: await iperf3(iperf.port, IPERF_STREAMS, IPERF_SECONDS) / 1e9,
        tunnel: await iperf3(bulk, IPERF_STREAMS, IPERF_SECONDS) / 1e9,
      });
    }
    bench.details.groups = shares;
    return measures;
  } finally {
    await Promise.all(children.map((child) => child.stop()));
    await temporary.remove();
  }
}
