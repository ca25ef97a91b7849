/**
 * Hostile bytes: thousands of random and mutated frames (seeded, reproducible with
 * PORTHOLE_FUZZ_SEED) against the decoder and against a live relay, while a bulk transfer through
 * another tunnel of the same relay must complete intact.
 */

import { assert, assertEquals } from "./assert.ts";
import {
  connect,
  echo,
  eventually,
  fakeAgent,
  randomBytes,
  readAll,
  readExactly,
  relayDialer,
  request,
  startAgentProcess,
  startRelayProcess,
  startServer,
  tempConfigFile,
  WAIT_MS,
} from "./helpers.ts";
import { createHash } from "node:crypto";
import { randomToken } from "../lib/auth.ts";
import { closeQuietly, type Conn, writeAll } from "../lib/net.ts";
import { type AgentMessage, PROTOCOL_VERSION, ProtocolError } from "../lib/protocol.ts";
import { decodeAgentMessage, decodeRelayMessage, encodeFrame } from "../lib/message_codec.ts";

const SEED = Number(Deno.env.get("PORTHOLE_FUZZ_SEED") ?? 20261126);

/** A small seeded PRNG (mulberry32), so a failing run can be repeated exactly. */
function prng(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return { int, pick: <T>(items: T[]) => items[int(items.length)] };
}

const VALID: AgentMessage[] = [
  { type: "hello", version: PROTOCOL_VERSION, agent: "fuzz", nonce: randomToken() },
  { type: "auth", proof: "ab".repeat(32) },
  { type: "register", service: "web", port: 8080 },
  { type: "unregister", service: "web" },
  { type: "refuse", conn: randomToken(), reason: "no" },
  { type: "data", version: PROTOCOL_VERSION, session: randomToken(), conn: randomToken() },
  { type: "ping" },
];

/** One hostile input: random bytes, or a valid frame mutated in one of several ways. */
function hostileBytes(rand: ReturnType<typeof prng>): Uint8Array {
  const frame = encodeFrame(rand.pick(VALID));
  switch (rand.int(7)) {
    case 0:
      return randomBytes(1 + rand.int(64)); // noise
    case 1: { // flip bytes anywhere, length prefix included
      const bytes = frame.slice();
      for (let i = 0; i <= rand.int(4); i++) bytes[rand.int(bytes.length)] = rand.int(256);
      return bytes;
    }
    case 2:
      return frame.subarray(0, rand.int(frame.length)); // truncated
    case 3: { // a huge or a lying length
      const bytes = frame.slice();
      new DataView(bytes.buffer).setUint32(0, rand.pick([0, 1, 0xffffffff, 16385, 70000]));
      return bytes;
    }
    case 4: { // fields of the wrong type or out of range
      const text = JSON.stringify({
        type: rand.pick(["hello", "data", "auth", "register", "x", "__proto__"]),
        version: rand.pick([1, -1, 1e300, "1", null, 99]),
        agent: rand.pick(["a", "", "a".repeat(500), 7, "../../etc"]),
        nonce: rand.pick(["n", {}, []]),
        service: rand.pick(["web", "10.0.0.5:22", ""]),
        port: rand.pick([80, -1, 1.5, "80"]),
      });
      const payload = new TextEncoder().encode(text);
      const bytes = new Uint8Array(4 + payload.length);
      new DataView(bytes.buffer).setUint32(0, payload.length);
      bytes.set(payload, 4);
      return bytes;
    }
    case 5: // frames out of order: a valid frame that may not come first
      return new Uint8Array([...encodeFrame(rand.pick(VALID.slice(1))), ...frame]);
    default: // garbage after a valid opening frame
      return new Uint8Array([...frame, ...randomBytes(1 + rand.int(32))]);
  }
}

Deno.test(`fuzz (seed ${SEED}): the decoders accept or reject every input with a ProtocolError`, () => {
  const rand = prng(SEED);
  for (let i = 0; i < 20_000; i++) {
    const payload = hostileBytes(rand).subarray(4);
    for (const decode of [decodeAgentMessage, decodeRelayMessage]) {
      try {
        const message = decode(payload);
        assertEquals(typeof message.type, "string");
        encodeFrame(message); // whatever is accepted can be sent on
      } catch (error) {
        assert(error instanceof ProtocolError, `input ${i}: ${error}`);
      }
    }
  }
});

for (const mode of ["insecure", "tls"] as const) {
  Deno.test(`fuzz (seed ${SEED}, ${mode}): a live relay survives hostile agents while another tunnel carries a bulk transfer`, async () => {
    const rand = prng(SEED + 1);
    await using server = startServer(echo);
    const config = tempConfigFile("[limits]\nhandshake_timeout = 0.5\n");
    await using relay = await startRelayProcess([
      ...(mode === "insecure" ? ["--insecure"] : []),
      "--config",
      config,
    ]);
    // Over TLS, every other stranger speaks TLS, so its bytes reach the parser; the rest send
    // their bytes raw, to the TLS layer.
    const dialer = relayDialer(relay);
    const stranger = (i: number): Promise<Conn> =>
      mode === "tls" && i % 2 === 0 ? dialer.dial(WAIT_MS) : connect(relay.port);
    // The classic flow, so that the relay's sockets can be counted (spares keep their own time).
    await using agent = await startAgentProcess(relay, { bulk: server.port }, ["--spares", "0"]);
    const baseline = relay.socketCount();

    // The bulk transfer runs, 1 MiB round trip after round trip, until the fuzzing is over.
    let fuzzing = true;
    const bulk = (async () => {
      const conn = await connect(agent.publicPort.bulk);
      const sent = createHash("sha256");
      const received = createHash("sha256");
      let rounds = 0;
      for (; fuzzing || rounds < 8; rounds++) {
        const chunk = randomBytes(1024 * 1024);
        sent.update(chunk);
        await writeAll(conn, chunk);
        received.update(await readExactly(conn, chunk.length));
      }
      conn.close();
      return { rounds, sent: sent.digest("hex"), received: received.digest("hex") };
    })();

    // Strangers: 1,500 connections, each sending one hostile input, 50 at a time.
    for (let batch = 0; batch < 30; batch++) {
      await Promise.all(Array.from({ length: 50 }, async (_, i) => {
        const conn = await stranger(i);
        try {
          await writeAll(conn, hostileBytes(rand));
          await readAll(conn); // the relay answers with an error frame or closes
        } catch {
          // reset: also a clean refusal
        } finally {
          closeQuietly(conn);
        }
      }));
    }
    // Authenticated agents sending hostile frames on their control channels, then vanishing.
    for (let i = 0; i < 100; i++) {
      const hostile = await fakeAgent(relay, `hostile-${i}`);
      await writeAll(hostile.channel.conn, hostileBytes(rand)).catch(() => {});
      hostile.channel.close();
    }

    fuzzing = false;
    const { rounds, sent, received } = await bulk;
    assertEquals(received, sent, `bulk transfer corrupted after ${rounds} MiB`);
    assertEquals(relay.lines.filter((line) => /Uncaught|panicked|error: /.test(line)), []);
    await eventually(() => relay.socketCount() === baseline, "relay sockets back to baseline");
    const after = await request(agent.publicPort.bulk, new TextEncoder().encode("still here"));
    assertEquals(new TextDecoder().decode(after), "still here");
  });
}
