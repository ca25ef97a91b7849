/**
 * A real HAProxy in front of two relays, with the PROXY protocol on, configured by the example in
 * docs/scaling.md (its addresses made loopback ones, its checks faster): the relays trust HAProxy's
 * header, so the service behind the agent (nginx, reading the agent's header) sees the real
 * client's address; round robin sends clients through each relay. HAProxy checks each relay's
 * `/healthz/web` on its `--health` endpoint, so a relay killed -9, or one whose agent is gone, leaves the rotation and the
 * next connections are all served through the other.
 */

import { assert, assertEquals } from "./assert.ts";
import {
  eventually,
  freePort,
  type Proc,
  startAgentProcess,
  startRelayProcess,
  tempStateDir,
} from "./helpers.ts";
import { type HAProxy, startHAProxy } from "./haproxy.ts";
import { startNginx } from "./nginx.ts";

const CLIENT = "127.0.0.7"; // a loopback address of the client's own, not HAProxy's
/** nginx reading the agent's PROXY header and answering with the client address it gives. */
const ANSWERS_CLIENT_ADDRESS =
  'listen 127.0.0.1:PORT proxy_protocol; location / { return 200 "$proxy_protocol_addr"; }';

/** The `haproxy` block of docs/scaling.md with each of `replaced`'s keys (which must be there) replaced. */
async function documentedConfig(replaced: Record<string, string>): Promise<string> {
  const doc = await Deno.readTextFile(new URL("../docs/scaling.md", import.meta.url));
  let config = doc.match(/^```haproxy\n([^]*?)^```$/m)?.[1] ?? "";
  for (const [from, to] of Object.entries(replaced)) {
    assert(config.includes(from), `docs/scaling.md's HAProxy example should have ${from}`);
    config = config.replaceAll(from, to);
  }
  return config;
}

/** GET / through HAProxy with curl from {@link CLIENT}; returns the body (the address nginx saw). */
async function get(port: number): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command("curl", {
    args: ["-sS", "--max-time", "10", "--interface", CLIENT, `http://127.0.0.1:${port}/`],
    stdin: "null",
  }).output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  assertEquals(code, 0, `curl: ${text(stderr)}`);
  return text(stdout);
}

/** How many connections from {@link CLIENT} `relay` has logged as closed. */
const served = (relay: Proc) =>
  relay.lines.filter((line) => /connection closed: .* client=127\.0\.0\.7:/.test(line)).length;

/** A relay as docs/scaling.md runs it, its public port for web and its health endpoint known. */
function startRelay(stateDir: string) {
  const ports = { web: freePort(), health: freePort() };
  return startRelayProcess([
    ...["--state-dir", stateDir, "--expose", `web=127.0.0.1:${ports.web}`],
    ...["--proxy-protocol-from", "127.0.0.1/32"], // HAProxy's address
    ...["--health", `127.0.0.1:${ports.health}`],
  ]).then((relay) => Object.assign(relay, ports));
}

type Relay = Awaited<ReturnType<typeof startRelay>>;

/** An agent serving nginx as web, with the PROXY header nginx reads, on each of `relays`. */
function startAgent(nginxPort: number, ...relays: Relay[]) {
  return startAgentProcess(relays[0], { web: nginxPort }, [
    ...relays.flatMap((relay) => ["--relay", `127.0.0.1:${relay.port}`]),
    ...["--proxy-protocol", "web=v2", "--reconnect-max", "1"],
  ]);
}

/** HAProxy with the documented config in front of relays `a` and `b`, both checked UP. */
async function startBalancer(a: Relay, b: Relay): Promise<HAProxy & { port: number }> {
  const port = freePort();
  const config = await documentedConfig({
    "bind :443": `bind 127.0.0.1:${port}`,
    "192.0.2.10:8443 send-proxy-v2 check port 7838":
      `127.0.0.1:${a.web} send-proxy-v2 check port ${a.health}`,
    "192.0.2.11:8443 send-proxy-v2 check port 7838":
      `127.0.0.1:${b.web} send-proxy-v2 check port ${b.health}`,
    "inter 2s": "inter 200ms",
  });
  const haproxy = await startHAProxy(config, port);
  await eventually(async () => (await states(haproxy)) === "UP,UP", "HAProxy's checks pass");
  return Object.assign(haproxy, { port });
}

const states = async (haproxy: HAProxy) => Object.values(await haproxy.servers()).join();

/** Four clients through HAProxy, two through each relay, each seen by nginx as itself. */
async function roundRobin(haproxy: { port: number }, a: Relay, b: Relay): Promise<void> {
  for (let i = 0; i < 4; i++) assertEquals(await get(haproxy.port), CLIENT, `request ${i}`);
  await eventually(() => served(a) + served(b) === 4, "both relays log 4 connections");
  assertEquals([served(a), served(b)], [2, 2], "round robin: two through each relay");
}

/** Kills `victim` -9; once HAProxy has taken relay a out, five more clients, all through b. */
async function allThroughB(haproxy: HAProxy & { port: number }, b: Relay, victim: Proc) {
  Deno.kill(victim.pid, "SIGKILL");
  await victim.status;
  await eventually(async () => (await states(haproxy)) === "DOWN,UP", "relay a checked down");
  for (let i = 0; i < 5; i++) assertEquals(await get(haproxy.port), CLIENT, `after: ${i}`);
  await eventually(() => served(b) === 7, "relay b logs the 5 new connections");
}

Deno.test("HAProxy in front of two relays: the real client reaches the service; one relay killed, the next connections are served", async () => {
  await using nginx = await startNginx(ANSWERS_CLIENT_ADDRESS);
  const stateDir = tempStateDir(); // one certificate for both, so one --fingerprint trusts both
  const relayA = await startRelay(stateDir);
  try {
    await using relayB = await startRelay(stateDir);
    await using agent = await startAgent(nginx.port, relayA, relayB);
    for (const relay of [relayA, relayB]) {
      await agent.waitFor(new RegExp(`service web \\(.*\\) is reachable at .*:${relay.web}$`));
    }
    await using haproxy = await startBalancer(relayA, relayB);
    await roundRobin(haproxy, relayA, relayB);

    await allThroughB(haproxy, relayB, relayA);
  } finally {
    await relayA.stop();
  }
});

Deno.test("HAProxy in front of two relays: a relay whose agent is gone fails /healthz/web and leaves the rotation", async () => {
  await using nginx = await startNginx(ANSWERS_CLIENT_ADDRESS);
  const stateDir = tempStateDir();
  await using relayA = await startRelay(stateDir);
  await using relayB = await startRelay(stateDir);
  const agentA = await startAgent(nginx.port, relayA);
  try {
    await using _agentB = await startAgent(nginx.port, relayB);
    await using haproxy = await startBalancer(relayA, relayB);
    await roundRobin(haproxy, relayA, relayB);
    const answerOf = (path: string) =>
      fetch(`http://127.0.0.1:${relayA.health}${path}`).then(async (answer) => ({
        status: answer.status,
        text: await answer.text(),
      }));
    const health = async (path: string) => (await answerOf(path)).status;
    assertEquals(
      [await health("/healthz"), await health("/healthz/web"), await health("/status")],
      [200, 200, 404],
      "--health serves the checks, and nothing else",
    );
    assertEquals(
      await answerOf("/healthz/"),
      { status: 404, text: "not found: only /healthz and /healthz/SERVICE here\n" },
      "a check without a service name is told what --health serves, not pointed at /status",
    );

    await allThroughB(haproxy, relayB, agentA);
    assertEquals(await health("/healthz/web"), 503, "relay a's agent is gone");
  } finally {
    await agentA.stop();
  }
});
