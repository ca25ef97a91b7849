/**
 * The processes under test and their peers, all on 127.0.0.1: the backends, an iperf3 server,
 * and relay + agent pairs. Relay and agent run with `--log-level warn`, so they print nothing
 * per connection; their ports are therefore chosen here in advance, and readiness is checked by
 * connecting (and echoing) rather than by reading their announcements.
 */

import { connect, echoOnce } from "./probes.ts";
import { V8_FLAGS } from "../lib/launch.ts";
import { Child, cpuTicks, removeLater, sleep, startPorthole } from "./procs.ts";

/**
 * Measures 1–5 run relay and agent over plain TCP, what their targets were set for. Measure 6
 * (TLS overhead) starts a second tunnel without this flag: TLS, as porthole runs by default.
 */
export const PLAIN_TCP = "--insecure";
/** What the relay logs at start (at info level) for the agents' `--fingerprint`. */
const FINGERPRINT_LINE = /TLS certificate fingerprint \(SHA-256\): ([0-9A-Fa-f:]+)/;
/** Linux's default first ephemeral port (net.ipv4.ip_local_port_range). */
const EPHEMERAL_FIRST = 32_768;
/** Longest wait for a process to become ready. */
export const READY_TIMEOUT_MS = 15_000;

/** Ports that were free a moment ago, all different. */
export function freePorts(count: number): number[] {
  const listeners = Array.from(
    { length: count },
    () => Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  );
  listeners.forEach((listener) => listener.close());
  return listeners.map((listener) => listener.addr.port);
}

/**
 * A range of `size` ports below the kernel's ephemeral range (so no outgoing connection takes
 * one meanwhile), every one of them free a moment ago.
 */
export function freePortRange(size: number): { first: number; last: number } {
  for (let attempt = 0; attempt < 20; attempt++) {
    const first = 10_000 + Math.floor(Math.random() * (EPHEMERAL_FIRST - 10_000 - size));
    const ports = Array.from({ length: size }, (_, i) => first + i);
    if (ports.every(isFree)) return { first, last: first + size - 1 };
  }
  throw new Error(`no free range of ${size} ports below ${EPHEMERAL_FIRST}`);
}

function isFree(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return true;
  } catch {
    return false;
  }
}

/** Retries `attempt` every 50 ms until it resolves; fails after {@link READY_TIMEOUT_MS}. */
export async function retryUntil(
  what: string,
  attempt: () => Promise<unknown>,
  watched: Child[] = [],
): Promise<void> {
  const until = performance.now() + READY_TIMEOUT_MS;
  while (true) {
    try {
      await attempt();
      return;
    } catch (error) {
      const dead = watched.find((child) => child.exited);
      if (dead) throw new Error(`${dead.name} exited:\n${dead.lines.join("\n")}`);
      if (performance.now() > until) {
        throw new Error(`${what} not ready in ${READY_TIMEOUT_MS} ms: ${(error as Error).message}`);
      }
      await sleep(50);
    }
  }
}

/** The echo, sink and source servers of `backends.ts`, in a process of their own. */
export interface Backends {
  child: Child;
  echo: number;
  sink: number;
  source: number;
}

/** Starts `backends.ts` and reads the ports it announces. */
export async function startBackends(): Promise<Backends> {
  const child = new Child("backends", Deno.execPath(), [
    "run",
    "-q",
    "--allow-net=127.0.0.1",
    new URL("backends.ts", import.meta.url).pathname,
  ]);
  const port = async (name: string) =>
    Number((await child.waitForLine(new RegExp(`^${name} (\\d+)$`), READY_TIMEOUT_MS))[1]);
  return {
    child,
    echo: await port("echo"),
    sink: await port("sink"),
    source: await port("source"),
  };
}

/** Starts `iperf3 -s` on a free loopback port. */
export async function startIperfServer(): Promise<{ child: Child; port: number }> {
  const [port] = freePorts(1);
  const child = new Child("iperf3 -s", "iperf3", [
    ...["-s", "-B", "127.0.0.1", "-p", `${port}`, "--forceflush"],
  ]);
  await child.waitForLine(/Server listening on/, READY_TIMEOUT_MS);
  return { child, port };
}

/**
 * TLS the way a user sets it up for a self-signed relay: the relay makes a certificate in a
 * fresh state directory on its first start and prints its fingerprint (at info level); the
 * agent pins that. The benchmark's relay runs at warn level and would not print it, so a relay
 * is started once at info level to make the certificate and tell its fingerprint, then stopped;
 * the relay under test reuses the certificate. Resolves with the relay's and the agent's flags
 * and a function that removes the directory.
 */
async function tlsSetup(
  secret: string,
): Promise<{ relay: string[]; agent: string[]; remove: () => Promise<void> }> {
  const stateDir = await Deno.makeTempDir({ prefix: "porthole-bench-" });
  const { remove } = removeLater(stateDir);
  try {
    const [port] = freePorts(1);
    const first = startPorthole("relay", [
      ...["--listen", `127.0.0.1:${port}`, "--state-dir", stateDir, "--log-level", "info"],
    ], secret);
    try {
      const [, fingerprint] = await first.waitForLine(FINGERPRINT_LINE, READY_TIMEOUT_MS);
      return {
        relay: ["--state-dir", stateDir],
        agent: ["--fingerprint", fingerprint],
        remove,
      };
    } finally {
      await first.stop();
    }
  } catch (error) {
    await remove();
    throw error;
  }
}

/** A relay and an agent publishing some services, each pinned to a known public port. */
export interface Tunnel {
  relay: Child;
  agent: Child;
  /** Service id → the relay's public port for it. */
  ports: Record<string, number>;
  /** Output lines of relay and agent since they became ready. */
  logSinceReady(): string[];
  /** CPU ticks used so far by relay and agent together. */
  cpuTicks(): number;
  /** Stops both. */
  stop(): Promise<void>;
}

/**
 * Starts a relay and an agent that publishes `services` (id → backend port), over plain TCP or,
 * with `tls`, over TLS with a pinned self-signed certificate; resolves once a byte echoes
 * through the `echo` service, which must be among them. `extra` flags go to relay and agent;
 * `extra.webSocket` has the agent come as WebSocket upgrades (wss://, or ws:// without TLS);
 * `extra.via` puts something between agent and relay: given the relay's port, it returns the
 * port the agent dials instead.
 */
export async function startTunnel(
  services: Record<string, number>,
  secret: string,
  tls = false,
  extra: {
    relay?: string[];
    agent?: string[];
    webSocket?: boolean;
    via?: (relayPort: number) => number;
  } = {},
): Promise<Tunnel> {
  const trust = tls
    ? await tlsSetup(secret)
    : { relay: [PLAIN_TCP], agent: [PLAIN_TCP], remove: () => Promise.resolve() };
  // The agent registers its services in order, so once `echo`, the last, answers, all are up.
  const ids = [...Object.keys(services).filter((id) => id !== "echo"), "echo"];
  const [relayPort, ...publicPorts] = freePorts(ids.length + 1);
  const ports = Object.fromEntries(ids.map((id, i) => [id, publicPorts[i]]));
  const relay = startPorthole("relay", [
    ...["--listen", `127.0.0.1:${relayPort}`, "--log-level", "warn", ...trust.relay],
    ...ids.flatMap((id) => ["--expose", `${id}=127.0.0.1:${ports[id]}`]),
    ...extra.relay ?? [],
  ], secret);
  const children = [relay];
  const stop = () =>
    Promise.all(children.map((child) => child.stop())).then(trust.remove).then(() => {});
  try {
    await retryUntil("the relay", () => connect(relayPort).then((conn) => conn.close()), children);
    children.push(startPorthole("agent", [
      ...["--relay", relayAddress(extra.via?.(relayPort) ?? relayPort, tls, extra.webSocket)],
      ...["--id", "bench", "--log-level", "warn"],
      ...trust.agent,
      ...extra.agent ?? [],
      ...ids.flatMap((id) => ["--service", `${id}=127.0.0.1:${services[id]}`]),
    ], secret));
    await retryUntil("the tunnel", () => echoOnce(ports.echo), children);
  } catch (error) {
    await stop();
    throw error;
  }
  const [, agent] = children;
  const relaySeen = relay.lineCount;
  const agentSeen = agent.lineCount;
  return {
    relay,
    agent,
    ports,
    logSinceReady: () => [...relay.linesSince(relaySeen), ...agent.linesSince(agentSeen)],
    cpuTicks: () => cpuTicks(relay.pid) + cpuTicks(agent.pid),
    stop,
  };
}

/** The agent's --relay: the agent port as it is, or as a WebSocket URL. */
function relayAddress(port: number, tls: boolean, webSocket = false): string {
  if (!webSocket) return `127.0.0.1:${port}`;
  return `${tls ? "wss" : "ws"}://127.0.0.1:${port}/porthole`;
}

/** The bare-socket floor of the same flow (bench/floor.ts), in front of the `echo` backend. */
export interface Floor {
  /** The floor relay's public port. */
  port: number;
  /** CPU ticks used so far by its relay and agent together. */
  cpuTicks(): number;
  stop(): Promise<void>;
}

/** Starts bench/floor.ts as relay and agent, with porthole's V8 flags, in front of `echo`. */
export async function startFloor(echo: number): Promise<Floor> {
  const [port, agentPort] = freePorts(2);
  const script = new URL("floor.ts", import.meta.url).pathname;
  const run = (name: string, args: string[]) =>
    new Child(name, Deno.execPath(), [
      "run",
      "-q",
      "--allow-net=127.0.0.1",
      `--v8-flags=${V8_FLAGS}`,
      script,
      ...args,
    ]);
  const relay = run("floor relay", ["relay", String(port), String(agentPort)]);
  const children = [relay];
  const stop = () => Promise.all(children.map((child) => child.stop())).then(() => {});
  let agent: Child;
  try {
    await relay.waitForLine(/^ready$/, READY_TIMEOUT_MS);
    agent = run("floor agent", ["agent", String(agentPort), String(echo)]);
    children.push(agent);
    await agent.waitForLine(/^ready$/, READY_TIMEOUT_MS);
    await retryUntil("the floor tunnel", () => echoOnce(port), children);
  } catch (error) {
    await stop();
    throw error;
  }
  return { port, cpuTicks: () => cpuTicks(relay.pid) + cpuTicks(agent.pid), stop };
}
