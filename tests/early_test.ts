/**
 * Early data (lib/early.ts, lib/relay/early.ts, lib/agent/early.ts): a client's first exchange
 * crosses the control channel while its data channel is being opened. The relay's side and the
 * agent's side each against the test speaking the protocol, then real relay and agent with their
 * data channels held back by a gate: the answer comes before the data channel, the switch-over
 * loses, doubles and reorders nothing (under a transfer both ways, and with a service that
 * streams more than the window), and a data channel that cannot be opened closes the client at
 * once.
 */

import { assert, assertEquals, assertMatch } from "./assert.ts";
import {
  acceptAgent,
  connect,
  echo,
  eventually,
  fakeAgent,
  Proc,
  randomBytes,
  readAll,
  readExactly,
  relayDialer,
  sha256,
  startAgentProcess,
  startRelayProcess,
  startServer,
} from "./helpers.ts";
import { statusOf } from "./faults.ts";
import type { ControlChannel } from "../lib/channel.ts";
import { FrameReader } from "../lib/frames.ts";
import { closeQuietly, writeAll } from "../lib/net.ts";
import {
  EARLY_CHUNK_BYTES,
  EARLY_WINDOW_BYTES,
  type Message,
  PROTOCOL_VERSION,
} from "../lib/protocol.ts";
import { decodeRelayMessage, encodeFrame } from "../lib/message_codec.ts";
import { splice } from "../lib/splice.ts";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array) => new TextDecoder().decode(data);

/** The next message on `channel` other than a heartbeat. */
async function next<M extends Message>(channel: ControlChannel<M>): Promise<M> {
  const message = await channel.receive();
  assert(message, "the control channel ended");
  return message;
}

/** `count` bytes of a data channel after its answer frame: those read with it, then more. */
async function after(reader: FrameReader, conn: Deno.Conn, count: number): Promise<Uint8Array> {
  const rest = reader.takeRest();
  if (rest.length >= count) return rest;
  return new Uint8Array([...rest, ...await readExactly(conn, count - rest.length)]);
}

Deno.test("early data (relay): the client's first bytes go out with connect, the agent's early answer reaches the client, the data channel follows in order", async () => {
  await using relay = await startRelayProcess();
  const agent = await fakeAgent(relay, "early-relay", EARLY_WINDOW_BYTES);
  try {
    assertEquals(agent.welcome.early, EARLY_WINDOW_BYTES, "the relay grants the window asked for");
    agent.channel.send({ type: "register", service: "svc" });
    const registered = await next(agent.channel);
    assert(registered.type === "registered", JSON.stringify(registered));
    const client = await connect(Number(registered.address.split(":").pop()));
    await writeAll(client, bytes("hello"));
    const connect_ = await next(agent.channel);
    assert(connect_.type === "connect", JSON.stringify(connect_));
    assertEquals(connect_.early, EARLY_WINDOW_BYTES, "this connection goes early");
    const early = await next(agent.channel);
    assertEquals(early, { type: "early", conn: connect_.conn, bytes: bytes("hello") });

    agent.channel.send({ type: "early", conn: connect_.conn, bytes: bytes("HEL") });
    agent.channel.send({ type: "early", conn: connect_.conn, bytes: bytes("LO") });
    assertEquals(text(await readExactly(client, 5)), "HELLO", "answered before any data channel");
    await writeAll(client, bytes(" world"));

    const data = await relayDialer(relay).dial(5_000) as Deno.Conn;
    await writeAll(
      data,
      new Uint8Array([
        ...encodeFrame({
          type: "data",
          version: PROTOCOL_VERSION,
          session: agent.session,
          conn: connect_.conn,
          early: 5,
        }),
        ...bytes("!"),
      ]),
    );
    const reader = new FrameReader(data);
    assertEquals(decodeRelayMessage((await reader.next())!), { type: "ready", early: 5 });
    assertEquals(text(await after(reader, data, 6)), " world", "only what did not go early");
    assertEquals(text(await readExactly(client, 1)), "!", "the data channel's bytes follow");
    client.close();
    data.close();
  } finally {
    agent.channel.close();
  }
});

Deno.test("early data (relay): an agent that overruns its window loses that client, not its session", async () => {
  await using relay = await startRelayProcess();
  const agent = await fakeAgent(relay, "overrun", EARLY_WINDOW_BYTES);
  try {
    agent.channel.send({ type: "register", service: "svc" });
    const registered = await next(agent.channel);
    assert(registered.type === "registered", JSON.stringify(registered));
    const port = Number(registered.address.split(":").pop());
    const first = await connect(port);
    const request = await next(agent.channel);
    assert(request.type === "connect", JSON.stringify(request));
    const chunk = randomBytes(EARLY_CHUNK_BYTES);
    for (let sent = 0; sent <= EARLY_WINDOW_BYTES; sent += chunk.length) {
      agent.channel.send({ type: "early", conn: request.conn, bytes: chunk });
    }
    const received = await readAll(first);
    assert(received.length <= EARLY_WINDOW_BYTES, "at most the window's bytes, then the close");
    await relay.waitFor(/more early bytes than its window/);
    first.close();
    const second = await connect(port);
    assertEquals((await next(agent.channel)).type, "connect", "the session is still up");
    second.close();
  } finally {
    agent.channel.close();
  }
});

Deno.test("early data (agent): asks for its window in hello, and for none with --early-data off", async () => {
  for (const off of [false, true]) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    await using _agent = new Proc("agent", [
      ...["--relay", `127.0.0.1:${listener.addr.port}`, "--insecure", "--spares", "0"],
      ...["--service", "echo=127.0.0.1:9"],
      ...(off ? ["--early-data", "off"] : []),
    ]);
    try {
      const { channel, hello } = await acceptAgent(listener, 0, EARLY_WINDOW_BYTES);
      assertEquals(hello.early, off ? undefined : EARLY_WINDOW_BYTES);
      channel.close();
    } finally {
      listener.close();
    }
  }
});

/**
 * A forwarder to the relay that passes connections until `hold()`; from then on it holds new
 * ones (data channels) until `open()`, or closes them at once if `refusing`.
 */
function gate(relayPort: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const held: Deno.Conn[] = [];
  let mode: "pass" | "hold" | "refuse" = "pass";
  const pass = async (conn: Deno.Conn) => {
    const relay = await Deno.connect({ hostname: "127.0.0.1", port: relayPort });
    conns.add(relay);
    await splice(conn, relay);
  };
  (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      if (mode === "pass") pass(conn).catch(() => closeQuietly(conn));
      else if (mode === "refuse") conn.close();
      else held.push(conn);
    }
  })().catch(() => {});
  return {
    port: listener.addr.port,
    hold(refusing = false) {
      mode = refusing ? "refuse" : "hold";
    },
    open() {
      mode = "pass";
      held.splice(0).forEach((conn) => pass(conn).catch(() => closeQuietly(conn)));
    },
    [Symbol.dispose]() {
      closeQuietly(listener);
      conns.forEach((conn) => closeQuietly(conn));
    },
  };
}

/**
 * A relay, and an agent reaching it through a gate, with no spares (so clients go early); once
 * the agent is up, the gate holds (or, `refusing`, closes) its data channels.
 */
async function gatedTunnel(service: number, refusing = false) {
  const relay = await startRelayProcess();
  const gated = gate(relay.port);
  const agent = await startAgentProcess(relay, { svc: service }, [
    ...["--relay", `127.0.0.1:${gated.port}`, "--spares", "0"],
  ]);
  gated.hold(refusing);
  return {
    relay,
    agent,
    gate: gated,
    port: agent.publicPort.svc,
    async [Symbol.asyncDispose]() {
      await agent[Symbol.asyncDispose]();
      gated[Symbol.dispose]();
      await relay[Symbol.asyncDispose]();
    },
  };
}

Deno.test("early data: answered while the data channel is held back; after the switch a transfer both ways arrives whole", async () => {
  await using service = startServer(echo);
  await using tunnel = await gatedTunnel(service.port);
  const client = await connect(tunnel.port);
  await writeAll(client, bytes("hello"));
  assertEquals(
    text(await readExactly(client, 5)),
    "hello",
    "the echo came over the control channel",
  );
  const payload = randomBytes(4 * 1024 * 1024);
  const echoed = readExactly(client, payload.length);
  const sending = writeAll(client, payload);
  tunnel.gate.open();
  await sending;
  assertEquals(sha256(await echoed), sha256(payload), "every byte, in order, once");
  client.close();
});

Deno.test("early data: a service that streams more than the window: the window's bytes come early, the rest in order after the switch", async () => {
  const stream = randomBytes(1024 * 1024);
  await using service = startServer(async (conn) => {
    await writeAll(conn, stream).catch(() => {});
    conn.close();
  });
  await using tunnel = await gatedTunnel(service.port);
  const client = await connect(tunnel.port);
  const early = await readExactly(client, EARLY_WINDOW_BYTES);
  assertEquals(sha256(early), sha256(stream.subarray(0, EARLY_WINDOW_BYTES)));
  tunnel.gate.open();
  const rest = await readAll(client);
  assertEquals(sha256(new Uint8Array([...early, ...rest])), sha256(stream));
  client.close();
});

Deno.test("early data: a data channel that cannot be opened closes the client at once, and nothing is left open", async () => {
  await using service = startServer(echo);
  await using tunnel = await gatedTunnel(service.port, true);
  const client = await connect(tunnel.port);
  const started = performance.now();
  await writeAll(client, bytes("hi"));
  // The echo may come early, or the data channel fail first.
  assertMatch(text(await readAll(client)), /^(hi)?$/, "at most the early answer, then the close");
  const tookMs = performance.now() - started;
  assert(tookMs < 5_000, `closed after ${Math.round(tookMs)} ms, not at the connect timeout`);
  await tunnel.relay.waitFor(/refused: cannot open a data channel to the relay/);
  client.close();
  await eventually(
    async () => (await statusOf(tunnel.agent)).connections === "0",
    "the agent closed the service connection",
  );
});

Deno.test("early data: a client whose front answers first (SOCKS5) waits for its data channel, and a service that speaks first is heard", async () => {
  await using service = startServer(async (conn) => {
    await writeAll(conn, bytes("banner\n"));
    await echo(conn);
  });
  await using relay = await startRelayProcess(["--proxy", "127.0.0.1:0"]);
  const [, proxyPort] = await relay.waitFor(/SOCKS5 and HTTP CONNECT clients on .*:(\d+)$/);
  await using _agent = await startAgentProcess(relay, { svc: service.port }, ["--spares", "0"]);
  const conn = await connect(Number(proxyPort));
  await writeAll(conn, new Uint8Array([5, 1, 0]));
  assertEquals([...await readExactly(conn, 2)], [5, 0]);
  await writeAll(conn, new Uint8Array([5, 1, 0, 3, 3, ...bytes("svc"), 0, 80]));
  assertEquals((await readExactly(conn, 10))[1], 0, "connected");
  assertEquals(text(await readExactly(conn, 7)), "banner\n", "the service's first words");
  await writeAll(conn, bytes("ping"));
  assertEquals(text(await readExactly(conn, 4)), "ping");
  conn.close();
});
