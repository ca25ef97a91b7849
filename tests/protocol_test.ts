/** The wire format: every message round-trips, and every malformed frame is rejected clearly. */

import { assert, assertEquals, assertRejects, assertThrows } from "./assert.ts";
import {
  AGENT_MESSAGES,
  type AgentMessage,
  type AgentMessageOf,
  MAX_FRAME_BYTES,
  type Message,
  RELAY_MESSAGES,
  type RelayMessage,
  type RelayMessageOf,
} from "../lib/protocol.ts";
import { decodeAgentMessage, decodeRelayMessage, encodeFrame } from "../lib/message_codec.ts";
import { FrameReader } from "../lib/frames.ts";
import { closeQuietly, writeAll } from "../lib/net.ts";
import { socketPair } from "./helpers.ts";

const encoder = new TextEncoder();
const payloadOf = (frame: Uint8Array) => frame.subarray(4);

Deno.test("every message type round-trips through encode and decode", () => {
  const fromAgent: AgentMessage[] = [
    { type: "hello", version: 1, agent: "office-1", nonce: "abc_-9" },
    { type: "auth", proof: "00ff" },
    { type: "register", service: "web" },
    { type: "unregister", service: "web" },
    { type: "refuse", conn: "tok", reason: "cannot reach 127.0.0.1:3000: connection refused" },
    { type: "data", version: 1, session: "s", conn: "c" },
    { type: "ping" },
    { type: "pong" },
  ];
  for (const message of fromAgent) {
    assertEquals(decodeAgentMessage(payloadOf(encodeFrame(message))), message);
  }
  const fromRelay: RelayMessage[] = [
    { type: "challenge", nonce: "n", proof: "p" },
    { type: "welcome", session: "s", heartbeatMs: 10_000 },
    { type: "registered", service: "web", address: "[::]:8080" },
    { type: "refused", service: "web", reason: "taken" },
    { type: "connect", service: "web", conn: "c", client: "203.0.113.9:4000" },
    { type: "ready" },
    { type: "error", message: "no" },
    { type: "ping" },
    { type: "pong" },
  ];
  for (const message of fromRelay) {
    assertEquals(decodeRelayMessage(payloadOf(encodeFrame(message))), message);
  }
});

/** A valid value for each field kind of the message tables. */
const SAMPLE: Record<string, unknown> = {
  id: "tok_1-a.b",
  text: "any text: with spaces",
  int: 7,
  kind: "http",
  texts: ["http://web.example.com/", "another"],
  bytes: new Uint8Array([0, 1, 254, 255]),
  bool: true,
};
/** JSON as frames carry it: byte fields as base64. */
const asJson = (value: unknown) =>
  JSON.stringify(value, (_key, v) => v instanceof Uint8Array ? v.toBase64() : v);
const TABLES = [
  { table: AGENT_MESSAGES, decode: decodeAgentMessage },
  { table: RELAY_MESSAGES, decode: decodeRelayMessage },
];

Deno.test("each table entry round-trips, drops unknown fields and refuses missing ones", () => {
  for (const { table, decode } of TABLES) {
    for (const [type, fields] of Object.entries(table)) {
      const full: Record<string, unknown> = { type };
      for (const [field, kind] of Object.entries(fields)) {
        full[field] = SAMPLE[kind.replace("?", "")];
      }
      const decodeText = (value: unknown) => decode(encoder.encode(asJson(value)));
      assertEquals(decode(payloadOf(encodeFrame(full as unknown as Message))), full);
      assertEquals(decodeText({ ...full, extra: "dropped", nested: { x: 1 } }), full);
      for (const [field, kind] of Object.entries(fields)) {
        const { [field]: _, ...without } = full;
        if (kind.endsWith("?")) assertEquals(decodeText(without), without);
        else assertThrows(() => decodeText(without), new RegExp(`"${type}" field "${field}" must`));
      }
    }
  }
});

/** True when A and B are the same type (not merely assignable either way). */
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true
  : false;

Deno.test("the types inferred from the tables are plain discriminated unions", () => {
  const register: Same<
    AgentMessageOf<"register">,
    {
      type: "register";
      service: string;
      kind?: "tcp" | "http" | "tls";
      port?: number;
      hosts?: string[];
    }
  > = true;
  const welcome: Same<
    RelayMessageOf<"welcome">,
    { type: "welcome"; session: string; heartbeatMs: number; spares?: number; early?: number }
  > = true;
  const ready: Same<RelayMessageOf<"ready">, { type: "ready"; early?: number }> = true;
  const early: Same<RelayMessageOf<"early">, { type: "early"; conn: string; bytes: Uint8Array }> =
    true;
  assert(register && welcome && ready && early); // the proof is that this file type-checks
});

Deno.test("decoding rejects malformed payloads with a message saying what is wrong", () => {
  const cases: [string, RegExp][] = [
    ["{not json", /not valid UTF-8 JSON/],
    ["[1,2]", /not a JSON object/],
    ["null", /not a JSON object/],
    ['{"type":"launch"}', /unknown message type "launch"/],
    ['{"type":"constructor"}', /unknown message type/],
    ['{"type":"register"}', /"register" field "service" must be a string/],
    ['{"type":"register","service":""}', /must be 1 to 128 characters/],
    ['{"type":"register","service":"10.0.0.5:22"}', /may hold only letters/],
    ['{"type":"register","service":"web","kind":"ftp"}', /"kind" must be one of tcp, http, tls/],
    ['{"type":"hello","version":-1,"agent":"a","nonce":"n"}', /non-negative integer/],
    ['{"type":"hello","version":1.5,"agent":"a","nonce":"n"}', /non-negative integer/],
    [`{"type":"refuse","conn":"c","reason":"${"x".repeat(5000)}"}`, /too long/],
    ['{"type":"ready"}', /unknown message type "ready"/], // a relay message, sent by an "agent"
    ['{"type":"early","conn":"c","bytes":"not base64!"}', /not valid base64/],
    [`{"type":"early","conn":"c","bytes":"${"A".repeat(12_000)}"}`, /at most 8192 bytes/],
  ];
  for (const [text, pattern] of cases) {
    assertThrows(() => decodeAgentMessage(encoder.encode(text)), pattern);
  }
  assertThrows(() => decodeAgentMessage(new Uint8Array([0xff, 0xfe])), /UTF-8/);
  const registered = (also: unknown) =>
    encoder.encode(JSON.stringify({ type: "registered", service: "w", address: "a", also }));
  assertThrows(
    () => decodeRelayMessage(registered(Array(17).fill("x"))),
    /"also" must be a list of at most 16 strings/,
  );
  assertThrows(() => decodeRelayMessage(registered([1])), /"also" must be a string/);
});

Deno.test("decoding keeps only the known fields of a message", () => {
  const text = '{"type":"register","service":"web","extra":{"deep":1},"__proto__":{"x":1}}';
  assertEquals(decodeAgentMessage(encoder.encode(text)), { type: "register", service: "web" });
});

Deno.test("encoding refuses a frame over the limit", () => {
  assertThrows(
    () => encodeFrame({ type: "error", message: "x".repeat(MAX_FRAME_BYTES) }),
    /exceeds the limit/,
  );
});

Deno.test("the frame reader handles frames split byte by byte and keeps bytes after a frame", async () => {
  const [a, b] = await socketPair();
  try {
    const first = encodeFrame({ type: "ready" });
    const second = encodeFrame({ type: "error", message: "x" });
    const raw = encoder.encode("raw bytes that follow");
    const reader = new FrameReader(b);
    const writing = (async () => {
      for (const byte of first) await writeAll(a, new Uint8Array([byte]));
      await writeAll(a, new Uint8Array([...second, ...raw]));
    })();
    assertEquals(decodeRelayMessage((await reader.next())!), { type: "ready" });
    assertEquals(decodeRelayMessage((await reader.next())!), { type: "error", message: "x" });
    await writing;
    // Whatever came in the same reads as the frame is handed over, not lost.
    let rest = reader.takeRest();
    while (rest.length < raw.length) {
      const more = new Uint8Array(64);
      const n = await b.read(more);
      assert(n !== null);
      rest = new Uint8Array([...rest, ...more.subarray(0, n)]);
    }
    assertEquals(new TextDecoder().decode(rest), "raw bytes that follow");
  } finally {
    closeQuietly(a);
    closeQuietly(b);
  }
});

Deno.test("the frame reader refuses a huge length before reading it, and a truncated frame", async () => {
  const [a, b] = await socketPair();
  try {
    const huge = new Uint8Array(4);
    new DataView(huge.buffer).setUint32(0, 0xffff_fff0);
    await writeAll(a, huge);
    await assertRejects(new FrameReader(b).next(), /exceeds the limit of 16384/);
  } finally {
    closeQuietly(a);
    closeQuietly(b);
  }
  const [c, d] = await socketPair();
  try {
    await writeAll(c, encodeFrame({ type: "ready" }).subarray(0, 6));
    c.close();
    await assertRejects(new FrameReader(d).next(), /closed in the middle of a frame/);
  } finally {
    closeQuietly(d);
  }
});

Deno.test("the frame reader returns null on a clean close between frames", async () => {
  const [a, b] = await socketPair();
  await writeAll(a, encodeFrame({ type: "ping" }));
  a.close();
  const reader = new FrameReader(b);
  assertEquals(decodeRelayMessage((await reader.next())!), { type: "ping" });
  assertEquals(await reader.next(), null);
  b.close();
});
