/** End to end: what users see when something is wrong, and what the relay refuses. */

import { assert, assertEquals, assertMatch } from "./assert.ts";
import {
  acceptAgent,
  connect,
  echo,
  fakeAgent,
  freePort,
  Proc,
  readAll,
  relayDialer,
  SECRET,
  startAgentProcess,
  startRelayProcess,
  startServer,
  WAIT_MS,
} from "./helpers.ts";
import { randomToken } from "../lib/auth.ts";
import { ControlChannel } from "../lib/channel.ts";
import { type Conn, writeAll } from "../lib/net.ts";
import { PROTOCOL_VERSION, type RelayMessage } from "../lib/protocol.ts";
import { decodeAgentMessage, decodeRelayMessage, encodeFrame } from "../lib/message_codec.ts";
import { FrameReader } from "../lib/frames.ts";

/** Connects a client and returns how long the tunnel took to close it, in ms. */
async function timeUntilClosed(port: number): Promise<number> {
  const started = performance.now();
  const conn = await connect(port);
  try {
    await writeAll(conn, new TextEncoder().encode("hello?"));
    assertEquals((await readAll(conn)).length, 0, "no bytes for a refused client");
  } catch (error) {
    assert(error instanceof Deno.errors.ConnectionReset, String(error));
  } finally {
    conn.close();
  }
  return performance.now() - started;
}

Deno.test("a wrong secret is refused with a clear message on both sides", async () => {
  await using relay = await startRelayProcess();
  const agent = new Proc("agent", [
    "--relay",
    `127.0.0.1:${relay.port}`,
    ...relay.trust,
    "--service",
    "web=127.0.0.1:9",
    "--id",
    "intruder",
  ], { PORTHOLE_SECRET: "not-the-right-secret-at-all" });
  const status = await agent.status;
  assertEquals(status.code, 3, agent.output);
  assertMatch(agent.output, /relay refused: agent intruder failed authentication: wrong secret/);
  await relay.waitFor(
    /refused agent connection .*agent intruder failed authentication: wrong secret/,
  );
  assert(!agent.output.includes(SECRET) && !relay.output.includes("not-the-right-secret"));
});

Deno.test("a client of a pinned service whose agent is offline is closed at once, and the relay says why", async () => {
  const port = freePort();
  await using relay = await startRelayProcess(["--expose", `web=127.0.0.1:${port}`]);
  const took = await timeUntilClosed(port);
  assert(took < 1000, `closed after ${took} ms`);
  await relay.waitFor(
    /client 127\.0\.0\.1:\d+ for service web: no agent is serving it now; closing/,
  );
});

Deno.test("a client is closed at once when the service refuses the agent's dial; both sides log why", async () => {
  const deadPort = freePort();
  await using relay = await startRelayProcess();
  await using agent = await startAgentProcess(relay, { web: deadPort }, ["--id", "office"]);
  const took = await timeUntilClosed(agent.publicPort.web);
  assert(took < 1000, `closed after ${took} ms`);
  const reason = `cannot reach 127\\.0\\.0\\.1:${deadPort}: connection refused`;
  await agent.waitFor(new RegExp(`service web client 127\\.0\\.0\\.1:\\d+: ${reason}`));
  await relay.waitFor(
    new RegExp(`client 127\\.0\\.0\\.1:\\d+ for service web: agent office refused: ${reason}`),
  );
});

Deno.test("a second agent cannot register a service id that is already online", async () => {
  await using server = startServer(echo);
  await using relay = await startRelayProcess();
  await using first = await startAgentProcess(relay, { web: server.port }, ["--id", "first"]);
  await using second = new Proc("agent", [
    "--relay",
    `127.0.0.1:${relay.port}`,
    ...relay.trust,
    "--service",
    `web=127.0.0.1:${server.port}`,
    "--id",
    "second",
  ]);
  await second.waitFor(
    /service web was refused by the relay: service id web is already online from agent first/,
  );
  // The first agent still serves it.
  const conn = await connect(first.publicPort.web);
  await writeAll(conn, new TextEncoder().encode("still mine"));
  await conn.closeWrite();
  assertEquals(new TextDecoder().decode(await readAll(conn)), "still mine");
  conn.close();
});

/** Opens a data channel presenting `conn` for `session`; returns the relay's answer. */
async function openDataChannel(
  relay: { port: number; fingerprint: string },
  session: string,
  conn: string,
): Promise<{ answer: RelayMessage | null; channel: Conn; rest: Uint8Array }> {
  const channel = await relayDialer(relay).dial(WAIT_MS);
  await writeAll(
    channel,
    encodeFrame({ type: "data", version: PROTOCOL_VERSION, session, conn }),
  );
  const reader = new FrameReader(channel);
  const payload = await reader.next();
  return {
    answer: payload && decodeRelayMessage(payload),
    channel,
    rest: reader.takeRest(),
  };
}

/** Waits for the relay's next `connect` on a fake agent's control channel. */
async function nextConnect(channel: ControlChannel<RelayMessage>) {
  const message = await channel.receive();
  assert(message?.type === "connect", `expected connect, got ${JSON.stringify(message)}`);
  return message;
}

Deno.test("data channels with made-up, foreign, reused or expired connection ids are refused", async () => {
  await using relay = await startRelayProcess(["--connect-timeout", "0.5"]);
  const owner = await fakeAgent(relay, "owner");
  const other = await fakeAgent(relay, "other");
  try {
    owner.channel.send({ type: "register", service: "svc" });
    const registered = await owner.channel.receive();
    assert(registered?.type === "registered", JSON.stringify(registered));
    const publicPort = Number(registered.address.split(":").pop());

    // Made up: a well-formed id the relay never issued.
    const madeUp = await openDataChannel(relay, owner.session, randomToken());
    assertEquals(madeUp.answer, {
      type: "error",
      message: "data channel with a connection id unknown, expired or already used",
    });
    madeUp.channel.close();

    // A client arrives; another agent's session presents its id: refused, client not handed over.
    const client = await connect(publicPort);
    const request = await nextConnect(owner.channel);
    assertEquals(request.service, "svc");
    assert(request.conn.length >= 22, "connection id carries at least 128 bits");
    const foreign = await openDataChannel(relay, other.session, request.conn);
    assertEquals(foreign.answer, {
      type: "error",
      message: "data channel with a connection id issued to another agent session",
    });
    foreign.channel.close();

    // The rightful owner still gets the client, and bytes flow.
    const mine = await openDataChannel(relay, owner.session, request.conn);
    assertEquals(mine.answer, { type: "ready" });
    await writeAll(client, new TextEncoder().encode("to agent"));
    const got = new Uint8Array(8);
    let at = mine.rest.length;
    got.set(mine.rest);
    while (at < 8) at += (await mine.channel.read(got.subarray(at)))!;
    assertEquals(new TextDecoder().decode(got), "to agent");

    // Reused: the same id a second time.
    const again = await openDataChannel(relay, owner.session, request.conn);
    assertEquals(again.answer?.type, "error");
    again.channel.close();
    mine.channel.close();
    assertEquals((await readAll(client)).length, 0);
    client.close();

    // Expired: nobody answers within --connect-timeout; the client is closed, the id is dead.
    const late = await connect(publicPort);
    const lateRequest = await nextConnect(owner.channel);
    assertEquals((await readAll(late)).length, 0, "the waiting client is closed at expiry");
    late.close();
    const expired = await openDataChannel(relay, owner.session, lateRequest.conn);
    assertEquals(expired.answer, {
      type: "error",
      message: "data channel with a connection id unknown, expired or already used",
    });
    expired.channel.close();
    await relay.waitFor(/agent owner opened no data channel within 500 ms; closing/);
  } finally {
    owner.channel.close();
    other.channel.close();
  }
});

Deno.test("an agent refuses a service its own configuration does not name", async () => {
  // A relay that has been tampered with asks the real agent for a service it does not serve.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  await using agent = new Proc("agent", [
    "--relay",
    `127.0.0.1:${listener.addr.port}`,
    "--insecure",
    "--service",
    "web=127.0.0.1:9",
    "--id",
    "careful",
  ]);
  try {
    const { channel } = await acceptAgent(listener);
    assertEquals(await channel.receive(), { type: "register", service: "web" });
    const token = randomToken();
    channel.send({ type: "connect", service: "ssh", conn: token, client: "203.0.113.9:4000" });
    assertEquals(await channel.receive(), {
      type: "refuse",
      conn: token,
      reason: "agent careful has no service ssh",
    });
    await agent.waitFor(/service ssh client 203\.0\.113\.9:4000: agent careful has no service ssh/);
    channel.close();
  } finally {
    listener.close();
  }
});

Deno.test("the agent stops when the relay cannot prove it holds the secret", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const agent = new Proc("agent", [
    "--relay",
    `127.0.0.1:${listener.addr.port}`,
    "--insecure",
    "--service",
    "web=127.0.0.1:9",
  ]);
  const conn = await listener.accept();
  const channel = new ControlChannel(conn, decodeAgentMessage);
  try {
    assertEquals((await channel.receive())?.type, "hello");
    channel.send({ type: "challenge", nonce: randomToken(), proof: "0".repeat(64) });
    assertEquals((await channel.receive())?.type, "auth");
    channel.send({ type: "welcome", session: randomToken(), heartbeatMs: 10_000 });
    assertEquals((await agent.status).code, 3);
    assertMatch(agent.output, /could not prove it holds the secret/);
  } finally {
    channel.close();
    listener.close();
  }
});

Deno.test("command lines: --help, --version, and clear errors for bad flags", async () => {
  const run = async (script: "relay" | "agent", args: string[], env = {}) => {
    const proc = new Proc(script, args, env);
    return { code: (await proc.status).code, output: proc.output };
  };
  for (const script of ["relay", "agent"] as const) {
    const help = await run(script, ["--help"]);
    assertEquals(help.code, 0);
    assertMatch(help.output, /Example:/);
    assertMatch((await run(script, ["--version"])).output, /^porthole \w+ \d+\.\d+\.\d+/);
    const unknown = await run(script, ["--frobnicate"]);
    assertEquals(unknown.code, 2);
    assertMatch(unknown.output, /frobnicate.*see \w+ --help/s);
  }
  const noSecret = await run("relay", ["--listen", "127.0.0.1:0"], { PORTHOLE_SECRET: "" });
  assertEquals(noSecret.code, 1);
  assertMatch(noSecret.output, /no secret: pass --secret-file FILE or set PORTHOLE_SECRET/);
  const badService = await run("agent", ["--relay", "127.0.0.1:1", "--service", "web"]);
  assertEquals(badService.code, 2);
  assertMatch(badService.output, /--service "web" is not ID=HOST:PORT/);
  const badAddress = await run("agent", ["--relay", "nowhere", "--service", "a=127.0.0.1:1"]);
  assertEquals(badAddress.code, 2);
  assertMatch(badAddress.output, /--relay: "nowhere" is not HOST:PORT/);
});
