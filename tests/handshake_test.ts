/** Both halves of the handshakes of lib/handshake.ts, run against each other over loopback. */

import { assert, assertEquals, assertRejects } from "./assert.ts";
import { secretKey } from "../lib/auth.ts";
import { ControlChannel } from "../lib/channel.ts";
import {
  challengeAgent,
  greetRelay,
  HandshakeRefusedError,
  openDataChannel,
  READY_FRAME,
} from "../lib/handshake.ts";
import { closeQuietly, writeAll } from "../lib/net.ts";
import { type AgentMessage, PROTOCOL_VERSION, ProtocolError } from "../lib/protocol.ts";
import { decodeAgentMessage, decodeRelayMessage, encodeFrame } from "../lib/message_codec.ts";
import { FrameReader } from "../lib/frames.ts";
import { readAll, socketPair } from "./helpers.ts";

const KEY = secretKey("handshake-test-secret-0123");
const OTHER_KEY = secretKey("another-secret-0123456789");
const RELAY_NAME = "127.0.0.1:7835";
const WRONG_SECRET = "agent office failed authentication: wrong secret or unknown agent " +
  "(give agent and relay the same secret; with --config, list the agent under [agents])";

/** A control channel as each end sees it, over one loopback socket pair; closed on dispose. */
async function controlPair() {
  const [a, b] = await socketPair();
  const agent = new ControlChannel(a, decodeRelayMessage);
  const relay = new ControlChannel(b, decodeAgentMessage);
  return { agent, relay, [Symbol.dispose]: () => (agent.close(), relay.close()) };
}

/**
 * The relay's side as the relay runs it: reads `hello`, challenges, and answers `welcome` when
 * the agent proved the secret (or always, with `admitAnyone`), else `error`.
 */
async function relaySide(
  relay: ControlChannel<AgentMessage>,
  key: Uint8Array,
  admitAnyone = false,
) {
  const hello = await relay.receive();
  assert(hello?.type === "hello", `expected hello, got ${JSON.stringify(hello)}`);
  assertEquals(hello.version, PROTOCOL_VERSION);
  const verdict = await challengeAgent(relay, hello, key);
  if (verdict === "proven" || admitAnyone) {
    relay.send({ type: "welcome", session: "s1", heartbeatMs: 1000 });
  } else if (typeof verdict === "object") {
    relay.send({ type: "error", message: verdict.refused });
  }
  return verdict;
}

/** The error `promise` rejects with. */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(() => undefined, (error) => error);
  assert(error instanceof Error, "expected a rejection");
  return error;
}

Deno.test("the same secret proves both ways and the agent gets the welcome", async () => {
  using pair = await controlPair();
  const [welcome, verdict] = await Promise.all([
    greetRelay(pair.agent, "office", KEY, RELAY_NAME),
    relaySide(pair.relay, KEY),
  ]);
  assertEquals(verdict, "proven");
  assertEquals(welcome, { type: "welcome", session: "s1", heartbeatMs: 1000 });
});

Deno.test("an agent with another secret is refused, and hears why", async () => {
  using pair = await controlPair();
  const [error, verdict] = await Promise.all([
    rejection(greetRelay(pair.agent, "office", OTHER_KEY, RELAY_NAME)),
    relaySide(pair.relay, KEY),
  ]);
  assertEquals(verdict, { refused: WRONG_SECRET });
  assert(error instanceof HandshakeRefusedError, String(error));
  assertEquals(error.message, `the relay refused: ${WRONG_SECRET}`);
});

Deno.test("a relay that cannot prove the secret is refused by the agent, by name", async () => {
  using pair = await controlPair();
  const [error] = await Promise.all([
    rejection(greetRelay(pair.agent, "office", KEY, RELAY_NAME)),
    relaySide(pair.relay, OTHER_KEY, true), // admits anyone, but does not hold the secret
  ]);
  assert(error instanceof HandshakeRefusedError, String(error));
  assertEquals(
    error.message,
    "the relay at 127.0.0.1:7835 could not prove it holds the secret: " +
      "it is not the relay you meant, or its secret differs from this agent's",
  );
});

Deno.test("an error frame from the relay is a refusal", async () => {
  using pair = await controlPair();
  const greeting = rejection(greetRelay(pair.agent, "office", KEY, RELAY_NAME));
  assertEquals((await pair.relay.receive())?.type, "hello");
  pair.relay.send({ type: "error", message: "protocol version 1 is not supported" });
  const error = await greeting;
  assert(error instanceof HandshakeRefusedError, String(error));
  assertEquals(error.message, "the relay refused: protocol version 1 is not supported");
});

Deno.test("the agent rejects an unexpected message and a relay that goes away", async () => {
  {
    using pair = await controlPair();
    const greeting = rejection(greetRelay(pair.agent, "office", KEY, RELAY_NAME));
    await pair.relay.receive();
    pair.relay.send({ type: "welcome", session: "s1", heartbeatMs: 1000 }); // skips the challenge
    const error = await greeting;
    assert(error instanceof ProtocolError, String(error));
    assertEquals(error.message, 'expected "challenge" from the relay, got "welcome"');
  }
  {
    using pair = await controlPair();
    const greeting = greetRelay(pair.agent, "office", KEY, RELAY_NAME);
    await pair.relay.receive();
    pair.relay.close();
    await assertRejects(greeting, /^Error: the relay closed the connection during the handshake$/);
  }
});

Deno.test("the relay reports an agent that leaves, or answers other than auth", async () => {
  /** Starts the relay's side and sends `hello` as an agent would, up to the challenge. */
  const challenged = async () => {
    const pair = await controlPair();
    const verdict = relaySide(pair.relay, KEY);
    pair.agent.send({ type: "hello", version: PROTOCOL_VERSION, agent: "office", nonce: "n1" });
    assertEquals((await pair.agent.receive())?.type, "challenge");
    return Object.assign(pair, { verdict });
  };
  {
    using pair = await challenged();
    pair.agent.close();
    assertEquals(await pair.verdict, "closed");
  }
  {
    using pair = await challenged();
    pair.agent.send({ type: "register", service: "web" });
    assertEquals(await pair.verdict, { refused: 'expected "auth", got "register"' });
  }
});

/** Runs `relay` on the relay's end of a fresh data channel, after checking its `data` frame. */
async function dataChannel(relay: (conn: Deno.TcpConn) => Promise<void>) {
  const [agentEnd, relayEnd] = await socketPair();
  const served = (async () => {
    const opening = await new FrameReader(relayEnd).next();
    assertEquals(decodeAgentMessage(opening!), {
      type: "data",
      version: PROTOCOL_VERSION,
      session: "s1",
      conn: "c1",
    });
    await relay(relayEnd);
  })();
  return {
    opened: openDataChannel(agentEnd, "s1", "c1").then(({ rest }) => rest),
    agentEnd,
    served,
    [Symbol.dispose]: () => (closeQuietly(agentEnd), closeQuietly(relayEnd)),
  };
}

Deno.test("a data channel hands over the bytes that came in the same write as ready", async () => {
  const early = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: web\r\n\r\n");
  using channel = await dataChannel(async (conn) => {
    await writeAll(conn, new Uint8Array([...READY_FRAME, ...early]));
    await conn.closeWrite();
  });
  const first = await channel.opened;
  await channel.served;
  assert(first.length > 0, "the bytes read with `ready` were not handed over");
  // Loopback delivers one small write whole; were it split, the rest would still be on the socket.
  assertEquals(new Uint8Array([...first, ...await readAll(channel.agentEnd)]), early);
});

Deno.test("a data channel refused or closed by the relay rejects, saying which", async () => {
  {
    using channel = await dataChannel((conn) =>
      writeAll(conn, encodeFrame({ type: "error", message: "data channel with a used id" }))
    );
    await assertRejects(
      channel.opened,
      /^Error: the relay refused the data channel: data channel with a used id$/,
    );
    await channel.served;
  }
  {
    using channel = await dataChannel((conn) => Promise.resolve(conn.close()));
    await assertRejects(channel.opened, /the relay closed the data channel before accepting it/);
    await channel.served;
  }
});
