/**
 * End to end: the tunnel heals itself. Agents and relays killed with SIGKILL, a network that
 * turns into a black hole, a stale session, a refused agent that keeps trying.
 */

import { assert, assertEquals } from "./assert.ts";
import {
  connect,
  echo,
  eventually,
  fakeAgent,
  freePort,
  Proc,
  randomBytes,
  readExactly,
  request,
  startAgentProcess,
  startRelayProcess,
  startServer,
  tempStateDir,
} from "./helpers.ts";
import {
  establishedConnections,
  finishTransfers,
  refused,
  Shim,
  startTransfers,
  statusOf,
} from "./faults.ts";
import { writeAll } from "../lib/net.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Sends `text` through the echo service at `port` and returns what comes back. */
async function echoed(port: number, text = "ping"): Promise<string> {
  return decoder.decode(await request(port, encoder.encode(text)));
}

/** Reads until the end of the stream or a reset, whichever comes. */
async function readUntilClosed(conn: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(256 * 1024);
  try {
    while ((await conn.read(buffer)) !== null) {
      // discard
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.ConnectionReset)) throw error;
  } finally {
    conn.close();
  }
}

Deno.test("kill -9 an agent during 20 transfers: its clients are closed at once, another agent's transfers finish intact, the relay forgets it", async () => {
  const chunk = randomBytes(64 * 1024);
  await using endless = startServer(async (conn) => {
    while (true) await writeAll(conn, chunk);
  });
  const blob = randomBytes(8 * 1024 * 1024);
  await using blobServer = startServer((conn) => writeAll(conn, blob));
  await using relay = await startRelayProcess();
  // The classic flow (--spares 0), so that every socket is accounted for; spare data channels
  // come and go with the load (tests/spares_test.ts).
  await using steady = await startAgentProcess(relay, { blob: blobServer.port }, [
    ...["--id", "steady", "--spares", "0"],
  ]);
  const relaySockets = relay.socketCount();
  await using doomed = await startAgentProcess(relay, { stream: endless.port }, [
    ...["--id", "doomed", "--spares", "0"],
  ]);

  // 20 clients of the doomed agent and 4 of the steady one, all part-way through, with the
  // whole path full of bytes (the clients pause reading).
  const doomedClients = await Promise.all(
    Array.from({ length: 20 }, async () => {
      const conn = await connect(doomed.publicPort.stream);
      await readExactly(conn, 64 * 1024);
      return conn;
    }),
  );
  const steadyClients = await startTransfers(steady.publicPort.blob, 4, 1024 * 1024);

  const killedAt = performance.now();
  Deno.kill(doomed.pid, "SIGKILL");
  const closedAfter = await Promise.all(
    doomedClients.map((conn) => readUntilClosed(conn).then(() => performance.now() - killedAt)),
  );
  const slowest = Math.max(...closedAfter);
  assert(slowest < 2_000, `the last client of the killed agent was closed after ${slowest} ms`);

  await finishTransfers(steadyClients, blob); // the other agent's transfers arrive intact

  await relay.waitFor(/agent doomed: stream offline/);
  await refused(doomed.publicPort.stream);
  const status = await statusOf(relay);
  assertEquals(
    [status.agents, status.services, status.pending, status.connections],
    ["1", "1", "0", "1"],
    "only the steady agent's session and control channel remain",
  );
  await eventually(
    () => relay.socketCount() === relaySockets,
    `relay sockets back to ${relaySockets} (now ${relay.socketCount()})`,
  );
});

Deno.test("kill -9 the relay: the agent reconnects when it is back, and the service is at the same address", async () => {
  await using server = startServer(echo);
  const relayPort = freePort();
  const webPort = freePort();
  // The same port, pinned address and certificate (kept in --state-dir) after the restart.
  const relayArgs = [
    "--listen",
    `127.0.0.1:${relayPort}`,
    "--expose",
    `web=127.0.0.1:${webPort}`,
    "--state-dir",
    tempStateDir(),
  ];
  await using first = await startRelayProcess(relayArgs);
  await using agent = await startAgentProcess(first, { web: server.port }, [
    "--id",
    "office",
    "--reconnect-max",
    "1",
  ]);
  assertEquals(agent.publicPort.web, webPort);
  assertEquals(await echoed(webPort, "before"), "before");

  const seen = agent.lines.length;
  Deno.kill(first.pid, "SIGKILL");
  await first.status;
  await agent.waitFor(
    /(closed the control channel|control channel to 127\.0\.0\.1:\d+ lost: [^;]+); reconnecting in \d+ ms \(attempt 1\)/,
    { from: seen },
  );
  await agent.waitFor(
    /cannot reach the relay at 127\.0\.0\.1:\d+: connection refused; reconnecting in \d+ ms \(attempt 2\)/,
    { from: seen },
  );
  await refused(webPort);

  const restartedAt = performance.now();
  await using _second = await startRelayProcess(relayArgs);
  const [, port] = await agent.waitFor(/service web \(.*\) is reachable at .*:(\d+)$/, {
    from: seen,
  });
  const took = performance.now() - restartedAt;
  assertEquals(Number(port), webPort, "the same pinned address");
  assertEquals(await echoed(webPort, "after"), "after");
  assert(took < 5_000, `the agent took ${took} ms to come back`);
});

Deno.test("black hole between agent and relay: both notice within three heartbeats, the relay frees the service, the agent comes back", async () => {
  const HEARTBEAT_MS = 500;
  await using server = startServer(echo);
  await using relay = await startRelayProcess(["--heartbeat", String(HEARTBEAT_MS / 1000)]);
  await using shim = new Shim(relay.port);
  await using agent = await startAgentProcess({ ...relay, port: shim.port }, { web: server.port }, [
    "--id",
    "cave",
    "--reconnect-max",
    "0.5",
  ]);
  const webPort = agent.publicPort.web;
  assertEquals(await echoed(webPort), "ping");

  const seen = { relay: relay.lines.length, agent: agent.lines.length };
  shim.blackhole();
  const darkAt = performance.now();
  const [relayNoticed, agentNoticed] = await Promise.all([
    relay.waitFor(/agent cave silent for \d+ ms; dropping its session/, { from: seen.relay })
      .then(() => performance.now() - darkAt),
    agent.waitFor(/the relay at 127\.0\.0\.1:\d+ has been silent for \d+ ms/, { from: seen.agent })
      .then(() => performance.now() - darkAt),
  ]);
  // Up to three intervals of silence, plus a little for timers and the log pipe.
  const limit = 3 * HEARTBEAT_MS + 300;
  assert(relayNoticed <= limit, `the relay noticed after ${relayNoticed} ms`);
  assert(agentNoticed <= limit, `the agent noticed after ${agentNoticed} ms`);
  await relay.waitFor(/agent cave: control channel ended: nothing heard for/, { from: seen.relay });
  await relay.waitFor(/agent cave: web offline/, { from: seen.relay });
  const status = await statusOf(relay);
  assertEquals([status.agents, status.services, status.pending], ["0", "0", "0"]);
  await refused(webPort);

  shim.restore();
  const [, port] = await agent.waitFor(/service web .* is reachable at .*:(\d+)$/, {
    from: seen.agent,
  });
  assertEquals(Number(port), webPort, "the service gets its port back");
  assertEquals(await echoed(webPort, "back"), "back");
});

Deno.test("a new session for the same agent id replaces a stale one", async () => {
  await using server = startServer(echo);
  await using relay = await startRelayProcess();
  const stale = await fakeAgent(relay, "office");
  try {
    stale.channel.send({ type: "register", service: "web" });
    assertEquals((await stale.channel.receive())?.type, "registered");
    // The old session is still up as far as the relay knows; the agent comes back anyway.
    await using agent = await startAgentProcess(relay, { web: server.port }, [
      "--id",
      "office",
    ]);
    await relay.waitFor(/agent office connected again; closing its previous session/);
    await relay.waitFor(
      /agent office: control channel ended: replaced by a new session of the same agent/,
    );
    assertEquals(await stale.channel.receive().catch(() => null), null, "old session closed");
    assertEquals(await echoed(agent.publicPort.web), "ping");
    assertEquals((await statusOf(relay)).agents, "1");
  } finally {
    stale.channel.close();
  }
});

Deno.test("a refused agent with --retry-refused keeps trying, and gets in once the relay accepts it", async () => {
  const OTHER_SECRET = "the-rotated-secret-0123456789";
  await using server = startServer(echo);
  const relayPort = freePort();
  const relayArgs = ["--listen", `127.0.0.1:${relayPort}`, "--state-dir", tempStateDir()];
  await using oldRelay = await startRelayProcess(relayArgs);
  await using agent = new Proc("agent", [
    "--relay",
    `127.0.0.1:${relayPort}`,
    ...oldRelay.trust,
    "--service",
    `web=127.0.0.1:${server.port}`,
    "--id",
    "patient",
    "--retry-refused",
    "0.2",
  ], { PORTHOLE_SECRET: OTHER_SECRET });
  const refusal =
    /the relay refused: agent patient failed authentication: wrong secret .*; trying again in 0\.2 s \(--retry-refused\)/;
  await agent.waitFor(refusal);
  await agent.waitFor(refusal, { from: agent.lines.findIndex((line) => refusal.test(line)) + 1 });
  // The operator gives the relay the agent's secret and restarts it on the same port.
  await oldRelay.stop();
  await using _relay = await startRelayProcess(relayArgs, { PORTHOLE_SECRET: OTHER_SECRET });
  const [, port] = await agent.waitFor(/service web .* is reachable at .*:(\d+)$/);
  assertEquals(await echoed(Number(port)), "ping");
});

Deno.test("reconnect attempts back off up to --reconnect-max, each logged with its reason", async () => {
  const nowhere = freePort();
  await using agent = new Proc("agent", [
    "--relay",
    `127.0.0.1:${nowhere}`,
    "--insecure",
    "--service",
    "web=127.0.0.1:9",
    "--reconnect-max",
    "0.3",
  ]);
  const attempt =
    /cannot reach the relay at 127\.0\.0\.1:\d+: connection refused; reconnecting in (\d+) ms \(attempt (\d+)\)/;
  await agent.waitFor(/\(attempt 5\)/);
  const attempts = agent.lines.map((line) => line.match(attempt)).filter((m) => m !== null);
  assertEquals(attempts.slice(0, 5).map((m) => Number(m[2])), [1, 2, 3, 4, 5]);
  for (const match of attempts) assert(Number(match[1]) <= 300, `paused ${match[1]} ms`);
  assertEquals((await agent.stop()).code, 0, "a signal stops a reconnecting agent cleanly");
});

for (const mode of ["tls", "insecure"] as const) {
  Deno.test(`${mode}: every connection of relay and agent has TCP keepalive on, so a vanished peer is noticed`, async () => {
    await using server = startServer(echo);
    await using relay = await startRelayProcess(mode === "insecure" ? ["--insecure"] : []);
    await using agent = await startAgentProcess(relay, { echo: server.port });
    const conn = await connect(agent.publicPort.echo);
    await writeAll(conn, encoder.encode("hi"));
    await readExactly(conn, 2);
    // relay: control, client and data connections; agent: control, data and service
    // connections; and on both, the spare data channels the agent keeps
    await eventually(
      () =>
        establishedConnections(relay.pid).length >= 3 + 2 &&
        establishedConnections(agent.pid).length >= 3 + 2,
      "both hold three connections and two spares",
    );
    for (const proc of [relay, agent]) {
      // Idle now, so the timer running on each is the keepalive timer.
      await eventually(
        () => establishedConnections(proc.pid).every((c) => c.keepalive),
        `every connection of the ${proc === relay ? "relay" : "agent"} has keepalive on`,
      );
    }
    conn.close();
  });
}
