/** End to end: per-agent credentials, service ownership, client access rules, limits. */

import { assert, assertEquals, assertMatch } from "./assert.ts";
import {
  connect,
  echo,
  eventually,
  fakeAgent,
  freePort,
  Proc,
  readAll,
  relayDialer,
  startAgentProcess,
  startRelayProcess,
  startServer,
  tempConfigFile,
  WAIT_MS,
} from "./helpers.ts";
import { createHash } from "node:crypto";
import { type Conn, writeAll } from "../lib/net.ts";

const OFFICE_SECRET = "office-secret-0123456789";
const LAB_SECRET = "lab-secret-0123456789abc";

/** An agent with id `id` and secret `secret`, publishing `services` (`ID=HOST:PORT`). */
function agentAs(
  relay: { port: number; trust: string[] },
  id: string,
  secret: string,
  services: string[],
): Proc {
  return new Proc("agent", [
    "--relay",
    `127.0.0.1:${relay.port}`,
    ...relay.trust,
    "--id",
    id,
    ...services.flatMap((service) => ["--service", service]),
  ], { PORTHOLE_SECRET: secret });
}

/** For each connection, the ms from `started` until the relay closed it (sorted). */
function closedAfter(conns: Conn[], started: number): Promise<number[]> {
  return Promise.all(conns.map(async (conn) => {
    try {
      await conn.read(new Uint8Array(1));
    } catch {
      // reset
    }
    conn.close();
    return performance.now() - started;
  })).then((times) => times.sort((a, b) => a - b));
}

/** Whether a client gets an echo through `port` (true) or is closed at once (false). */
async function echoes(port: number): Promise<boolean> {
  const conn = await connect(port);
  try {
    await writeAll(conn, new TextEncoder().encode("?"));
    const got = await conn.read(new Uint8Array(1));
    return got === 1;
  } catch {
    return false; // reset
  } finally {
    conn.close();
  }
}

Deno.test("per-agent secrets: listed agents connect, others are refused; a hashed secret works", async () => {
  await using server = startServer(echo);
  const config = tempConfigFile(`
[agents.office]
secret = "${OFFICE_SECRET}"
services = ["web"]
[agents.lab]
secret_sha256 = "${createHash("sha256").update(LAB_SECRET).digest("hex")}"
services = ["*"]
`);
  await using relay = await startRelayProcess(["--config", config], { PORTHOLE_SECRET: "" });
  await using office = agentAs(relay, "office", OFFICE_SECRET, [`web=127.0.0.1:${server.port}`]);
  await using lab = agentAs(relay, "lab", LAB_SECRET, [`anything=127.0.0.1:${server.port}`]);
  const [, webPort] = await office.waitFor(/service web .* is reachable at .*:(\d+)$/);
  await lab.waitFor(/service anything .* is reachable/);
  assert(await echoes(Number(webPort)));
  // An agent not in the file, and a listed agent with another's secret, are refused.
  for (const [id, secret] of [["stranger", OFFICE_SECRET], ["lab", OFFICE_SECRET]]) {
    const agent = agentAs(relay, id, secret, ["x=127.0.0.1:9"]);
    assertEquals((await agent.status).code, 3, agent.output);
    assertMatch(agent.output, new RegExp(`agent ${id} failed authentication`));
  }
});

Deno.test("an agent cannot register a service id or claim a port it is not allowed", async () => {
  await using server = startServer(echo);
  const allowedPort = freePort();
  const config = tempConfigFile(`
[agents.office]
secret = "${OFFICE_SECRET}"
services = ["web", "api"]
ports = [${allowedPort}]
`);
  await using relay = await startRelayProcess(["--config", config]);
  const forbiddenPort = freePort();
  await using agent = agentAs(relay, "office", OFFICE_SECRET, [
    `web@${allowedPort}=127.0.0.1:${server.port}`,
    `api@${forbiddenPort}=127.0.0.1:${server.port}`,
    `db=127.0.0.1:${server.port}`,
  ]);
  await agent.waitFor(new RegExp(`service web .* is reachable at 127\\.0\\.0\\.1:${allowedPort}$`));
  await agent.waitFor(
    new RegExp(
      `service api was refused by the relay: agent office may not claim public port ${forbiddenPort}`,
    ),
  );
  await agent.waitFor(/service db was refused by the relay: agent office may not serve db/);
  assert(await echoes(allowedPort));
});

Deno.test("SIGHUP applies a changed config: a removed agent is disconnected, others keep their tunnels", async () => {
  await using server = startServer(echo);
  const agentsFile = (ids: string[]) =>
    ids.map((id) => `[agents.${id}]\nsecret = "${OFFICE_SECRET}"\nservices = ["*"]\n`).join("");
  const config = tempConfigFile(agentsFile(["keeper", "leaver"]));
  await using relay = await startRelayProcess(["--config", config]);
  const start = (id: string) =>
    agentAs(relay, id, OFFICE_SECRET, [`${id}=127.0.0.1:${server.port}`]);
  await using keeper = start("keeper");
  await using leaver = start("leaver");
  const [, keeperPort] = await keeper.waitFor(/is reachable at .*:(\d+)$/);
  await leaver.waitFor(/is reachable/);
  const held = await connect(Number(keeperPort)); // a tunnel open across the reload
  await writeAll(held, new TextEncoder().encode("before "));

  Deno.writeTextFileSync(config, agentsFile(["keeper", "newcomer"]));
  Deno.kill(relay.pid, "SIGHUP");
  await relay.waitFor(/agent leaver is no longer allowed .*; disconnecting it/);
  assertEquals((await leaver.status).code, 3, "the removed agent is refused when it comes back");
  await using newcomer = start("newcomer");
  await newcomer.waitFor(/service newcomer .* is reachable/);

  await writeAll(held, new TextEncoder().encode("after"));
  await held.closeWrite();
  assertEquals(new TextDecoder().decode(await readAll(held)), "before after");
  held.close();
});

Deno.test("client access rules: CIDR deny and allow, caps per service and per address, rate", async () => {
  await using server = startServer(echo);
  const config = tempConfigFile(`
[services.denied]
deny = ["127.0.0.0/8"]
[services.outside]
allow = ["10.0.0.0/8", "::1/128"]
[services.inside]
allow = ["127.0.0.1/32"]
[services.capped]
max_connections = 3
max_connections_per_client = 2
[services.rated]
max_new_per_second_per_client = 5
`);
  await using relay = await startRelayProcess(["--config", config]);
  const ids = ["denied", "outside", "inside", "capped", "rated"];
  await using agent = await startAgentProcess(
    relay,
    Object.fromEntries(ids.map((id) => [id, server.port])),
  );
  const port = agent.publicPort;
  assertEquals(await echoes(port.denied), false);
  assertEquals(await echoes(port.outside), false);
  assertEquals(await echoes(port.inside), true);

  // Two held connections from this address fill its cap; a third is refused until one goes.
  const held = await Promise.all([connect(port.capped), connect(port.capped)]);
  for (const conn of held) {
    await writeAll(conn, new Uint8Array([1]));
    assertEquals(await conn.read(new Uint8Array(1)), 1);
  }
  assertEquals(await echoes(port.capped), false);
  held[0].close();
  await eventually(() => echoes(port.capped), "the freed slot is usable again");
  held[1].close();

  // A burst of 10 new connections: 5 pass, the rest are refused at once.
  const burst = [];
  for (let i = 0; i < 10; i++) burst.push(await echoes(port.rated));
  const passed = burst.filter(Boolean).length;
  assert(passed >= 5 && passed <= 6, `${passed} of 10 passed`);

  // Each refusal is counted, but logged once per address per interval.
  const deniedLines = relay.lines.filter((line) => /service denied: refused/.test(line));
  assertEquals(deniedLines.length, 1, deniedLines.join("\n"));
  for (let i = 0; i < 5; i++) assertEquals(await echoes(port.denied), false);
  assertEquals(relay.lines.filter((line) => /service denied: refused/.test(line)).length, 1);
});

Deno.test("limits: handshake deadline (slowloris), connections in handshake, pending ids, services", async () => {
  const config = tempConfigFile(`
[limits]
handshake_timeout = 1
max_unauthenticated = 20
max_pending_per_agent = 3
max_services_per_agent = 2
`);
  await using relay = await startRelayProcess(["--config", config, "--connect-timeout", "30"]);
  // Slowloris: 25 connections that send nothing, not even a TLS hello. 5 are over the limit and
  // closed at once; the rest are closed at the handshake deadline.
  const started = performance.now();
  const idle = await Promise.all(Array.from({ length: 25 }, () => connect(relay.port)));
  const endings = await closedAfter(idle, started);
  assert(endings[4] < 900, `over-limit connections closed at once: ${endings.slice(0, 5)}`);
  assert(endings[24] < 3000, `idle connections closed at the deadline: ${endings[24]}`);
  await relay.waitFor(/connections are already in their handshake \(limits.max_unauthenticated\)/);

  // The relay still serves agents afterwards; one may hold at most 3 waiting clients.
  const owner = await fakeAgent(relay, "owner");
  try {
    for (const service of ["a", "b", "c"]) owner.channel.send({ type: "register", service });
    const answers = [
      await owner.channel.receive(),
      await owner.channel.receive(),
      await owner.channel.receive(),
    ];
    assertEquals(answers.map((a) => a?.type), ["registered", "registered", "refused"]);
    assert(answers[2]?.type === "refused");
    assertMatch(answers[2].reason, /already serves 2 services \(limits.max_services_per_agent\)/);
    const publicPort = Number((answers[0] as { address: string }).address.split(":").pop());
    const waiting = await Promise.all(Array.from({ length: 3 }, () => connect(publicPort)));
    for (let i = 0; i < 3; i++) assertEquals((await owner.channel.receive())?.type, "connect");
    const extra = await connect(publicPort);
    assertEquals((await readAll(extra)).length, 0, "a fourth waiting client is closed at once");
    extra.close();
    await relay.waitFor(/already has 3 clients waiting for data channels/);
    waiting.forEach((conn) => conn.close());
  } finally {
    owner.channel.close();
  }
});

Deno.test("TLS connections that never send their opening frame are closed at the handshake deadline", async () => {
  const config = tempConfigFile("[limits]\nhandshake_timeout = 1\n");
  await using relay = await startRelayProcess(["--config", config]);
  const dialer = relayDialer(relay);
  const started = performance.now();
  const idle = await Promise.all(Array.from({ length: 10 }, () => dialer.dial(WAIT_MS)));
  const endings = await closedAfter(idle, started);
  assert(Math.max(...endings) < 3000, `closed after ${Math.max(...endings)} ms`);
  assert(Math.min(...endings) > 900, `closed early, after ${Math.min(...endings)} ms`);
});

Deno.test("limits: a WebSocket upgrade that stalls, or sends no frame after it, is closed at the handshake deadline", async () => {
  const config = tempConfigFile("[limits]\nhandshake_timeout = 1\n");
  await using relay = await startRelayProcess(["--insecure", "--config", config]);
  const started = performance.now();
  const stalled = await connect(relay.port);
  await writeAll(stalled, new TextEncoder().encode("GET /porthole HTTP/1.1\r\nHost: relay\r\n"));
  const silent = await connect(relay.port);
  await writeAll(
    silent,
    new TextEncoder().encode(
      "GET /porthole HTTP/1.1\r\nHost: relay\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    ),
  );
  const [stalledAnswer, silentAnswer] = await Promise.all([readAll(stalled), readAll(silent)]);
  const elapsed = performance.now() - started;
  assertEquals(stalledAnswer.length, 0, "no answer to half a request");
  assertMatch(new TextDecoder().decode(silentAnswer), /^HTTP\/1\.1 101 Switching Protocols\r\n/);
  assert(elapsed > 900 && elapsed < 3000, `closed at the deadline: ${elapsed} ms`);
  stalled.close();
  silent.close();
  await relay.waitFor(/the opening did not complete within|the opening frame did not complete/);
});
