/**
 * `make bench`: porthole measured against a direct connection, on loopback only. Starts its own
 * backends, relays and agents, prints a table, and writes bench/results/<time>.json and .svg.
 * What each measure means and how to read the chart: bench/README.md.
 *
 * Run with `deno run -A bench/bench.ts`: reading other processes' /proc files needs -A. Numbers
 * after it run those measures alone (`deno run -A bench/bench.ts 9 10`, or `make bench ONLY="9 10"`).
 */

import { randomToken } from "../lib/auth.ts";
import { AGENTS, controlPlane, SERVICES_PER_AGENT } from "./control.ts";
import { names } from "./names.ts";
import * as data from "./phases.ts";
import { clockTicks, openFileLimit, stopAll } from "./procs.ts";
import { formatTable, type Measure, meets, ratioOf, renderChart } from "./report.ts";
import { startBackends } from "./tunnel.ts";
import { slowLink } from "./slow_link.ts";
import { webSocket } from "./websocket.ts";
import { groups } from "./groups.ts";

/** The whole run is stopped after this long; it takes about twelve minutes on two cores. */
const OVERALL_TIMEOUT_MS = 25 * 60_000;
const RESULTS_DIR = new URL("results/", import.meta.url).pathname;

/** Whether the phase `name` ("4. concurrency …") runs: every one, or those whose number is named. */
function isChosen(name: string, numbers: string[]): boolean {
  return numbers.length === 0 || numbers.includes(name.slice(0, name.indexOf(".")));
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const bench: data.Bench = {
    secret: randomToken() + randomToken(),
    ticksPerSecond: await clockTicks(),
    backends: await startBackends(),
    details: {},
    logs: {},
  };
  const phases: [string, () => Promise<Measure[]>][] = [
    ["1. bulk throughput (and 3. CPU per GiB, 6. with TLS)", () => data.throughput(bench)],
    ["2. connection setup (and 3. CPU per connection, 6. with TLS)", () => data.setup(bench)],
    ["4. concurrency (and 6. with TLS)", () => data.concurrency(bench, data.HELD_CONNECTIONS)],
    [
      "4. concurrency up to the fd limit",
      () => data.concurrency(bench, "fd limit", data.HELD_CONNECTIONS),
    ],
    ["5. control plane", () => controlPlane(bench)],
    ["7. names on shared ports", () => names(bench)],
    ["8. the WebSocket transport", () => webSocket(bench)],
    ["9. new connections on a slow link", () => slowLink(bench)],
    ["10. agents in a group", () => groups(bench)],
    // 6. TLS overhead runs within 1, 2 and the first 4, beside the plain tunnel it is compared
    // with; its rows come last.
  ];
  const chosen = phases.filter(([name]) => isChosen(name, Deno.args));
  if (chosen.length === 0) throw new Error(`no measure numbered ${Deno.args.join(" or ")}`);
  const measured: Measure[] = [];
  for (const [name, run] of chosen) {
    const phaseStart = performance.now();
    console.error(`bench: ${name}...`);
    measured.push(...await run());
    console.error(`bench: ${name} took ${((performance.now() - phaseStart) / 1000).toFixed(0)} s`);
  }
  const measures = [
    ...measured.filter((measure) => !measure.tls),
    ...measured.filter((measure) => measure.tls),
  ];

  console.log(formatTable(measures));
  const judged = measures.map(meets).filter((verdict) => verdict !== undefined);
  console.log(`\n${judged.filter(Boolean).length} of ${judged.length} targets met.`);
  const stamp = startedAt.toISOString().replace(/\.\d+Z$/, "Z").replaceAll(/[-:]/g, "");
  await Deno.mkdir(RESULTS_DIR, { recursive: true });
  const json = `${RESULTS_DIR}${stamp}.json`;
  const svg = `${RESULTS_DIR}${stamp}.svg`;
  await Deno.writeTextFile(
    json,
    JSON.stringify(
      {
        startedAt: startedAt.toISOString(),
        seconds: (Date.now() - startedAt.getTime()) / 1000,
        machine: {
          deno: Deno.version,
          os: `${Deno.build.os} ${Deno.osRelease()}`,
          cpus: navigator.hardwareConcurrency,
          loadavg: Deno.loadavg(),
          clockTicks: bench.ticksPerSecond,
          openFileLimit: openFileLimit(Deno.pid),
        },
        settings: {
          iperfSeconds: data.IPERF_SECONDS,
          bulkBytes: data.BULK_BYTES,
          sequentialConnections: data.SEQUENTIAL_CONNECTIONS,
          warmupConnections: data.WARMUP_CONNECTIONS,
          heldConnections: data.HELD_CONNECTIONS,
          maxHeldConnections: data.MAX_HELD_CONNECTIONS,
          holdPauseMs: data.HOLD_PAUSE_MS,
          agents: AGENTS,
          servicesPerAgent: SERVICES_PER_AGENT,
        },
        measures: measures.map((measure) => ({
          ...measure,
          ratio: ratioOf(measure),
          meets: meets(measure),
        })),
        details: bench.details,
        logs: bench.logs,
      },
      null,
      2,
    ) + "\n",
  );
  await Deno.writeTextFile(svg, renderChart(measures, `porthole bench ${startedAt.toISOString()}`));
  console.log(`Results: ${json}\nChart:   ${svg}`);
  for (const [phase, lines] of Object.entries(bench.logs)) {
    console.log(
      `Note: porthole logged ${lines.length} line(s) during ${phase}, e.g.\n  ${lines[0]}`,
    );
  }
}

let exitCode = 0;
const abort = (why: string) => {
  console.error(`bench: ${why}; stopping every process it started`);
  stopAll().finally(() => Deno.exit(1));
};
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => abort(signal));
}
const watchdog = setTimeout(
  () => abort(`not done after ${OVERALL_TIMEOUT_MS / 60_000} minutes`),
  OVERALL_TIMEOUT_MS,
);
try {
  await main();
} catch (error) {
  console.error(`bench: ${(error as Error).stack ?? error}`);
  exitCode = 1;
} finally {
  clearTimeout(watchdog);
  await stopAll();
}
Deno.exit(exitCode);
