/**
 * Spare data channels (lib/relay/spares.ts, lib/agent/spares.ts): a client given to a spare,
 * two clients and one spare, a spare that dies before or while it is given a client, a session
 * that ends, a refusal, the relay's limit; and real agents under load with spares on.
 */

import { assert, assertEquals, assertMatch } from "./assert.ts";
import {
  acceptAgent,
  connect,
  echo,
  echoed,
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
  tempConfigFile,
  WAIT_MS,
} from "./helpers.ts";
import { statusOf } from "./faults.ts";
import type { ControlChannel } from "../lib/channel.ts";
import { FrameReader } from "../lib/frames.ts";
import { closeQuietly, type Conn, writeAll } from "../lib/net.ts";
import { PROTOCOL_VERSION, type RelayMessage } from "../lib/protocol.ts";
import { decodeAgentMessage, decodeRelayMessage, encodeFrame } from "../lib/message_codec.ts";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array) => new TextDecoder().decode(data);

type Relay = Awaited<ReturnType<typeof startRelayProcess>>;

/** A fake agent with service `svc` online; returns its channel, session and public port. */
async function agentWithService(relay: Relay, id: string) {
  const agent = await fakeAgent(relay, id);
  agent.channel.send({ type: "register", service: "svc" });
  const registered = await agent.channel.receive();
  assert(registered?.type === "registered", JSON.stringify(registered));
  return { ...agent, port: Number(registered.address.split(":").pop()) };
}

/** A spare data channel for `session`, as an agent opens one; resolves once the relay keeps it. */
async function openSpare(relay: Relay, session: string) {
  const from = relay.lines.length;
  const conn = await relayDialer(relay).dial(WAIT_MS);
  await writeAll(conn, encodeFrame({ type: "spare", version: PROTOCOL_VERSION, session }));
  await relay.waitFor(/a spare data channel is ready/, { from });
  return { conn, reader: new FrameReader(conn) };
}

/** The next message on a spare, and the first `count` bytes that follow it. */
async function clientOn(spare: { conn: Conn; reader: FrameReader }, count: number) {
  const payload = await spare.reader.next();
  const message = payload && decodeRelayMessage(payload);
  let rest = spare.reader.takeRest();
  if (rest.length < count) {
    const more = await readExactly(spare.conn as Deno.Conn, count - rest.length);
    rest = new Uint8Array([...rest, ...more]);
  }
  return { message, rest };
}

async function nextMessage(channel: ControlChannel<RelayMessage>): Promise<RelayMessage> {
  for (let message; (message = await channel.receive()) !== null;) {
    if (message.type !== "ping" && message.type !== "pong") return message;
  }
  throw new Error("the control channel ended");
}

const DEBUG = ["--log-level", "debug"];

Deno.test("spares: a client goes to a spare with its first bytes, the answer comes back after accept", async () => {
  await using relay = await startRelayProcess(DEBUG);
  const agent = await agentWithService(relay, "spare-owner");
  try {
    const spare = await openSpare(relay, agent.session);
    const client = await connect(agent.port);
    await writeAll(client, bytes("hello"));
    const { message, rest } = await clientOn(spare, 5);
    assert(message?.type === "client", JSON.stringify(message));
    assertEquals(message.service, "svc");
    assertMatch(message.client, /^127\.0\.0\.1:\d+$/);
    assertEquals(text(rest), "hello", "the client's first bytes come with it");
    await writeAll(
      spare.conn,
      new Uint8Array([...encodeFrame({ type: "accept" }), ...bytes("HI")]),
    );
    assertEquals(text(await readExactly(client, 2)), "HI");
    await writeAll(client, bytes(" more"));
    assertEquals(text(await readExactly(spare.conn as Deno.Conn, 5)), " more", "spliced both ways");
    client.close();
    spare.conn.close();
  } finally {
    agent.channel.close();
  }
});

Deno.test("spares: two clients and one spare: one takes it, the other is asked for over the control channel", async () => {
  await using relay = await startRelayProcess(DEBUG);
  const agent = await agentWithService(relay, "one-spare");
  try {
    const spare = await openSpare(relay, agent.session);
    const clients = await Promise.all([connect(agent.port), connect(agent.port)]);
    await Promise.all(clients.map((client, i) => writeAll(client, bytes(String(i)))));
    const onSpare = await clientOn(spare, 1);
    assertEquals(onSpare.message?.type, "client");
    const classic = await nextMessage(agent.channel);
    assert(classic.type === "connect", "the client the spare could not take is asked for");
    assert(["0", "1"].includes(text(onSpare.rest)), "the spare's client came with its own byte");
    agent.channel.send({ type: "refuse", conn: classic.conn, reason: "test over" });
    await writeAll(spare.conn, encodeFrame({ type: "accept" }));
    clients.forEach((client) => client.close());
    spare.conn.close();
  } finally {
    agent.channel.close();
  }
});

Deno.test("spares: one that dies unused is dropped; one that dies with a client hands it back, bytes and all", async () => {
  await using relay = await startRelayProcess(DEBUG);
  const agent = await agentWithService(relay, "dying-spares");
  try {
    const unused = await openSpare(relay, agent.session);
    const from = relay.lines.length;
    unused.conn.close();
    await relay.waitFor(/a spare data channel ended unused \(0 kept\)/, { from });

    const dying = await openSpare(relay, agent.session);
    const client = await connect(agent.port);
    await writeAll(client, bytes("abc"));
    const { message } = await clientOn(dying, 3);
    assertEquals(message?.type, "client");
    dying.conn.close(); // gone without an answer
    const classic = await nextMessage(agent.channel);
    assert(classic.type === "connect", JSON.stringify(classic));
    const data = await relayDialer(relay).dial(WAIT_MS);
    await writeAll(
      data,
      encodeFrame({
        type: "data",
        version: PROTOCOL_VERSION,
        session: agent.session,
        conn: classic.conn,
      }),
    );
    const reader = new FrameReader(data);
    assertEquals(decodeRelayMessage((await reader.next())!).type, "ready");
    let rest = reader.takeRest();
    if (rest.length < 3) {
      rest = new Uint8Array([...rest, ...await readExactly(data as Deno.Conn, 3 - rest.length)]);
    }
    assertEquals(text(rest), "abc", "the bytes the dead spare had taken reach the data channel");
    await writeAll(data, bytes("ok"));
    assertEquals(text(await readExactly(client, 2)), "ok");
    client.close();
    data.close();
  } finally {
    agent.channel.close();
  }
});

Deno.test("spares: a session's end closes its spares; a refusal on a spare turns the client away", async () => {
  await using relay = await startRelayProcess(DEBUG);
  const agent = await agentWithService(relay, "refusing");
  const refusing = await openSpare(relay, agent.session);
  const client = await connect(agent.port);
  const { message } = await clientOn(refusing, 0);
  assert(message?.type === "client", JSON.stringify(message));
  await writeAll(
    refusing.conn,
    encodeFrame({ type: "refuse", conn: message.conn, reason: "no such thing here" }),
  );
  assertEquals((await readAll(client)).length, 0, "the client is closed");
  await relay.waitFor(/agent refusing refused: no such thing here/);
  client.close();
  refusing.conn.close();

  const waiting = await openSpare(relay, agent.session);
  agent.channel.close(); // the session ends (a reconnect starts a new one)
  const ended = await waiting.reader.next().then((frame) => frame ?? "closed", () => "closed");
  assertEquals(ended, "closed", "the relay closed the spare with its session");
  waiting.conn.close();
});

Deno.test("spares: beyond limits.max_spares_per_agent, or for a session that is not up, a spare is refused", async () => {
  const config = tempConfigFile("[limits]\nmax_spares_per_agent = 1\n");
  await using relay = await startRelayProcess([...DEBUG, "--config", config]);
  const agent = await agentWithService(relay, "greedy");
  try {
    const kept = await openSpare(relay, agent.session);
    for (
      const [session, expected] of [
        [agent.session, /already keeps 1 spare data channels \(limits\.max_spares_per_agent\)/],
        ["not-a-session", /spare data channel for a session that is not up/],
      ] as const
    ) {
      const extra = await relayDialer(relay).dial(WAIT_MS);
      await writeAll(extra, encodeFrame({ type: "spare", version: PROTOCOL_VERSION, session }));
      const answer = decodeRelayMessage((await new FrameReader(extra).next())!);
      assert(answer.type === "error", JSON.stringify(answer));
      assertMatch(answer.message, expected);
      extra.close();
    }
    kept.conn.close();
  } finally {
    agent.channel.close();
  }
});

Deno.test("spares: a real agent keeps two while idle, and 200 clients at once plus 16 MiB all arrive whole", async () => {
  await using server = startServer(echo);
  await using relay = await startRelayProcess(DEBUG);
  await using agent = await startAgentProcess(relay, { echo: server.port });
  await relay.waitFor(/a spare data channel is ready \(2 kept\)/);
  const port = agent.publicPort.echo;
  const big = randomBytes(16 << 20);
  const [bulk, ...many] = await Promise.all([
    echoed(port, big),
    ...Array.from({ length: 200 }, (_, i) => echoed(port, bytes(`client ${i}`))),
  ]);
  assertEquals(sha256(bulk), sha256(big));
  assertEquals(many.map(text), Array.from({ length: 200 }, (_, i) => `client ${i}`));
  assert(
    relay.lines.some((line) => /a spare data channel is ready \([3-8] kept\)/.test(line)),
    "under load the agent kept more spares",
  );
  // Nothing is left over: the relay holds the control channel and the spares, the agent the spares.
  await eventually(async () => {
    const [relayStatus, agentStatus] = [await statusOf(relay), await statusOf(agent)];
    const spares = Number(relayStatus.spares);
    return relayStatus.pending === "0" && spares >= 2 && spares <= 8 &&
      Number(relayStatus.connections) === 1 + spares &&
      Number(agentStatus.connections) === spares &&
      Number(agentStatus.spares) === spares;
  }, "only the control channel and the spares are open");
});

Deno.test("spares: the agent opens again a spare that ended without a client (a proxy's idle timeout)", async () => {
  // The test is the relay: it speaks the protocol itself, offers two spares, and cuts one.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  await using _agent = new Proc("agent", [
    ...["--relay", `127.0.0.1:${listener.addr.port}`, "--insecure", "--id", "cut"],
    ...["--service", "web=127.0.0.1:9"],
  ]);
  const accepted: Deno.Conn[] = [];
  try {
    const { channel: control, session } = await acceptAgent(listener, 2);
    const nextSpare = async () => {
      const conn = await listener.accept();
      accepted.push(conn);
      const message = decodeAgentMessage((await new FrameReader(conn).next())!);
      assertEquals(message, { type: "spare", version: PROTOCOL_VERSION, session });
      return conn;
    };
    const [first] = [await nextSpare(), await nextSpare()];
    first.close();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const gaveUp = new Promise<"none">((resolve) => timer = setTimeout(resolve, 5_000, "none"));
    const third = await Promise.race([nextSpare(), gaveUp]).finally(() => clearTimeout(timer));
    assert(third !== "none", "a new spare came within 5 s of the cut");
    control.close();
  } finally {
    accepted.forEach((conn) => closeQuietly(conn));
    listener.close();
  }
});
