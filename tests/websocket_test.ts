/**
 * The WebSocket transport's frames and upgrades: against each other, and against Deno's own
 * WebSocket client and server (another implementation of RFC 6455), half-close included.
 */

import { assert, assertEquals, assertMatch, assertRejects } from "./assert.ts";
import { randomBytes, readAll, sha256, socketPair } from "./helpers.ts";
import { closeQuietly, type Conn, writeAll } from "../lib/net.ts";
import { TcpDialer } from "../lib/transport/tcp.ts";
import { openChannel, WebSocketDialer } from "../lib/transport/websocket.ts";
import { WebSocketConn } from "../lib/transport/websocket_conn.ts";
import { xorWithKey } from "../lib/transport/websocket_frames.ts";
import { encodeFrame } from "../lib/message_codec.ts";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const bytes = (text: string) => new TextEncoder().encode(text);

/** Both ends of one WebSocket over a loopback TCP pair: the agent's (client) and the relay's. */
async function webSocketPair(): Promise<[WebSocketConn, WebSocketConn]> {
  const [a, b] = await socketPair();
  return [new WebSocketConn(a, true), new WebSocketConn(b, false)];
}

/** Writes `data` and half-closes, while the peer reads everything; returns what it read. */
async function sendAndEnd(from: Conn, to: Conn, data: Uint8Array): Promise<Uint8Array> {
  const [, received] = await Promise.all([
    writeAll(from, data).then(() => from.closeWrite()),
    readAll(to),
  ]);
  return received;
}

Deno.test("websocket: 8 MiB each way, arriving whole, each side half-closing on its own", async () => {
  const [agent, relay] = await webSocketPair();
  const up = randomBytes(8 << 20), down = randomBytes(8 << 20);
  // The agent ends first; the relay keeps sending after it has read the agent's end.
  assertEquals(sha256(await sendAndEnd(agent, relay, up)), sha256(up));
  assertEquals(sha256(await sendAndEnd(relay, agent, down)), sha256(down));
  agent.close();
  relay.close();
});

Deno.test("websocket: the relay may end first, and the agent's answer still arrives", async () => {
  const [agent, relay] = await webSocketPair();
  await relay.closeWrite();
  assertEquals(await agent.read(new Uint8Array(10)), null);
  assertEquals(text(await sendAndEnd(agent, relay, bytes("late answer"))), "late answer");
  agent.close();
  relay.close();
});

Deno.test("websocket: a ping is answered, a text frame is refused", async () => {
  const [raw, server] = await socketPair();
  const relay = new WebSocketConn(server, false);
  const key = new Uint8Array([1, 2, 3, 4]);
  const payload = bytes("are you there");
  xorWithKey(payload, key, 0);
  await writeAll(raw, new Uint8Array([0x89, 0x80 | payload.length, ...key, ...payload]));
  const reading = relay.read(new Uint8Array(10));
  const pong = new Uint8Array(2 + 13);
  for (let at = 0; at < pong.length;) at += (await raw.read(pong.subarray(at)))!;
  assertEquals([pong[0], pong[1]], [0x8a, 13]);
  assertEquals(text(pong.subarray(2)), "are you there");
  await writeAll(raw, new Uint8Array([0x81, 0x80 | 2, ...key, 0x68 ^ 1, 0x69 ^ 2]));
  await assertRejects(reading, /opcode 1/);
  relay.close();
  raw.close();
});

/** A Conn over `bytes` that hands them out a few at a time (as a trickling network would). */
function trickling(bytes: Uint8Array, sizes: () => number): Conn {
  let at = 0;
  const addr: Deno.NetAddr = { transport: "tcp", hostname: "127.0.0.1", port: 1 };
  return {
    read(buffer) {
      if (at === bytes.length) return Promise.resolve(null);
      const count = Math.min(sizes(), buffer.length, bytes.length - at);
      buffer.set(bytes.subarray(at, at + count));
      at += count;
      return Promise.resolve(count);
    },
    write: (data) => Promise.resolve(data.length),
    closeWrite: () => Promise.resolve(),
    close() {},
    localAddr: addr,
    remoteAddr: addr,
  };
}

Deno.test("websocket: frames cut anywhere, and read into buffers of any size, arrive whole", async () => {
  // What an agent sends: frames of many sizes (some past 64 KiB), then the end.
  const sent: Uint8Array[] = [];
  const capture = trickling(new Uint8Array(0), () => 1);
  capture.write = (data) => {
    sent.push(data.slice());
    return Promise.resolve(data.length);
  };
  const agent = new WebSocketConn(capture, true);
  const data = randomBytes(300_000);
  for (const [from, to] of [[0, 1], [1, 126], [126, 70_000], [70_000, 300_000]]) {
    await writeAll(agent, data.subarray(from, to));
  }
  await agent.closeWrite();
  const wire = new Uint8Array(sent.reduce((sum, chunk) => sum + chunk.length, 0));
  sent.reduce((at, chunk) => (wire.set(chunk, at), at + chunk.length), 0);
  for (const [segment, bufferSize] of [[1, 1], [3, 7], [1000, 300], [65_536, 100_000]]) {
    const relay = new WebSocketConn(
      trickling(wire, () => 1 + (segment * Math.random() | 0)),
      false,
    );
    const received: Uint8Array[] = [];
    const buffer = new Uint8Array(bufferSize);
    for (let count; (count = await relay.read(buffer)) !== null;) {
      received.push(buffer.slice(0, count));
    }
    const all = new Uint8Array(received.reduce((sum, chunk) => sum + chunk.length, 0));
    received.reduce((at, chunk) => (all.set(chunk, at), at + chunk.length), 0);
    assertEquals(sha256(all), sha256(data), `segments up to ${segment}, buffer ${bufferSize}`);
  }
});

Deno.test("websocket: the mask is applied a word at a time at any offset", () => {
  const key = new Uint8Array([0xa1, 0xb2, 0xc3, 0xd4]);
  for (const [offset, length, at] of [[0, 64, 0], [1, 37, 3], [3, 5, 2], [2, 1, 1]]) {
    const data = randomBytes(offset + length).subarray(offset);
    const expected = data.map((byte, i) => byte ^ key[(at + i) & 3]);
    xorWithKey(data, key, at);
    assertEquals(data, expected);
  }
});

/** A Deno.serve WebSocket echo server that also notes each message's size. */
function denoEchoServer() {
  const sizes: number[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.binaryType = "arraybuffer";
    socket.onmessage = (event) => {
      const data = new Uint8Array(event.data as ArrayBuffer);
      sizes.push(data.length);
      socket.send(data); // an empty message comes back empty: the end of the direction
    };
    return response;
  });
  return { server, sizes, port: server.addr.port };
}

Deno.test("websocket: the agent's side talks to Deno's WebSocket server", async () => {
  const { server, sizes, port } = denoEchoServer();
  try {
    const dialer = new WebSocketDialer(new TcpDialer({ hostname: "127.0.0.1", port }), "/any");
    const conn = await dialer.dial(5_000);
    const data = randomBytes(300_000);
    const echoed = await sendAndEnd(conn, conn, data.subarray(1)); // from an unaligned offset
    assertEquals(sha256(echoed), sha256(data.subarray(1)));
    assertEquals(sizes.at(-1), 0, "the half-close arrived as an empty message");
    conn.close();
  } finally {
    await server.shutdown();
  }
});

Deno.test("websocket: the relay's side takes Deno's WebSocket client", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = new WebSocket(`ws://127.0.0.1:${listener.addr.port}/porthole`);
  client.binaryType = "arraybuffer";
  const received: number[] = [];
  client.onmessage = (event) => received.push((event.data as ArrayBuffer).byteLength);
  const raw = await listener.accept();
  const channel = await openChannel(raw, "/porthole");
  assert(channel, "the upgrade was accepted");
  await new Promise((resolve) => client.onopen = resolve);
  const frame = encodeFrame({ type: "error", message: "from Deno" });
  client.send(frame);
  assertEquals(
    text((await channel.reader.next())!),
    JSON.stringify({ type: "error", message: "from Deno" }),
  );
  await writeAll(channel.conn, new Uint8Array(1000));
  client.send(new Uint8Array(0));
  assertEquals(await channel.conn.read(new Uint8Array(10)), null, "an empty message ends it");
  const closed = new Promise<CloseEvent>((resolve) => client.onclose = resolve);
  await channel.conn.closeWrite();
  assertEquals((await closed).code, 1000, "both ends done: a clean close");
  assertEquals(received, [1000, 0]);
  channel.conn.close();
  listener.close();
});

Deno.test("websocket: the agent port answers other paths 404 and passes frames through", async () => {
  const [client, server] = await socketPair();
  await writeAll(client, bytes("GET /other HTTP/1.1\r\nHost: relay\r\nUpgrade: websocket\r\n\r\n"));
  assertEquals(await openChannel(server, "/porthole"), undefined);
  closeQuietly(server);
  assertMatch(text(await readAll(client)), /^HTTP\/1\.1 404 Not Found\r\n/);
  client.close();

  const [agent, relay] = await socketPair();
  await writeAll(agent, encodeFrame({ type: "error", message: "plain" }));
  const channel = await openChannel(relay, "/porthole");
  assertEquals(channel?.conn, relay, "no WebSocket in between");
  assertEquals(
    text((await channel!.reader.next())!),
    JSON.stringify({ type: "error", message: "plain" }),
  );
  agent.close();
  relay.close();
});
