/** The relay's rendezvous, held clients and port front, in-process over loopback sockets. */

import { assert, assertEquals } from "./assert.ts";
import { eventually, readExactly, socketPair } from "./helpers.ts";
import { OpenConnections } from "../lib/drain.ts";
import type { Arrival, Front, Refusal } from "../lib/front/front.ts";
import { PortFront } from "../lib/front/ports.ts";
import { READY_FRAME } from "../lib/handshake.ts";
import { closeQuietly, writeAll } from "../lib/net.ts";
import { HeldConn } from "../lib/relay/held.ts";
import { LiveConnections } from "../lib/admin/live.ts";
import { Rendezvous } from "../lib/relay/rendezvous.ts";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const bytes = (value: string) => new TextEncoder().encode(value);

/** A front that records whom it turned away, and why. */
function recordingFront(): Front & { refusals: Refusal[] } {
  const refusals: Refusal[] = [];
  return {
    name: "recording",
    refusals,
    publish: () => undefined,
    withdraw: () => {},
    refuse: (arrival, why) => {
      refusals.push(why);
      closeQuietly(arrival.conn);
    },
    close: () => {},
  };
}

/** A client connection as a front hands it over: the test keeps the client's end. */
async function arrival(front: Front, head = new Uint8Array(0)) {
  const [client, relaySide] = await socketPair();
  const arrived: Arrival = {
    service: "web",
    conn: relaySide,
    client: relaySide.remoteAddr,
    head,
    front,
  };
  return { client, arrived };
}

const session = { id: "session-1", agentId: "office" };

Deno.test("rendezvous: an id is single use and bound to its session; the rightful claim joins", async () => {
  const open = new OpenConnections();
  const rendezvous = new Rendezvous({ open, live: new LiveConnections() });
  const front = recordingFront();
  const { client, arrived } = await arrival(front);
  let released = 0;
  const { token } = rendezvous.hold(arrived, session, () => released++);
  assertEquals(rendezvous.countFor(session.id), 1);
  await writeAll(client, bytes("GET /"));
  assertEquals(rendezvous.claim(token, "session-2"), "issued to another agent session");
  const claimed = rendezvous.claim(token, session.id);
  assert(typeof claimed !== "string", "the rightful session claims the client");
  assertEquals(rendezvous.claim(token, session.id), "unknown, expired or already used");
  assertEquals(rendezvous.size, 0);

  const [agentSide, dataConn] = await socketPair();
  open.track(dataConn);
  await rendezvous.join(claimed, dataConn, bytes("banner"));
  const greeting = await readExactly(agentSide, READY_FRAME.length + 5);
  assertEquals(greeting.subarray(0, READY_FRAME.length), READY_FRAME);
  assertEquals(text(greeting.subarray(READY_FRAME.length)), "GET /", "held bytes follow ready");
  assertEquals(text(await readExactly(client, 6)), "banner", "early bytes reach the client");
  await writeAll(client, bytes("more"));
  assertEquals(text(await readExactly(agentSide, 4)), "more");
  client.close();
  agentSide.close();
  await open.emptied(5_000);
  assertEquals(open.size, 0, "both ends are released when the splice ends");
  assertEquals(released, 1, "the client's release ran once");
  assertEquals(front.refusals, []);
});

Deno.test("rendezvous: expiry, the agent's refusal and a lost session turn clients away", async () => {
  const open = new OpenConnections();
  const rendezvous = new Rendezvous({ open, connectTimeoutMs: 100, live: new LiveConnections() });
  const front = recordingFront();
  const expiring = await arrival(front);
  rendezvous.hold(expiring.arrived, session);
  assertEquals(await expiring.client.read(new Uint8Array(1)), null, "closed at the deadline");

  const refused = await arrival(front);
  const { token } = rendezvous.hold(refused.arrived, session);
  rendezvous.refused(token, "session-2", "not mine"); // another session cannot refuse it
  assertEquals(rendezvous.size, 1);
  rendezvous.refused(token, session.id, "cannot reach 127.0.0.1:1");
  assertEquals(await refused.client.read(new Uint8Array(1)), null);

  const dropped = [await arrival(front), await arrival(front)];
  for (const { arrived } of dropped) rendezvous.hold(arrived, session);
  rendezvous.dropSession(session.id, session.agentId);
  for (const { client } of dropped) assertEquals(await client.read(new Uint8Array(1)), null);
  assertEquals(front.refusals, ["unreachable", "unreachable", "unreachable", "unreachable"]);
  assertEquals([rendezvous.size, open.size], [0, 0]);
  for (const { client } of [expiring, refused, ...dropped]) client.close();
});

Deno.test("held connection: a front's head comes first, then the connection's own bytes", async () => {
  const [client, relaySide] = await socketPair();
  const held = new HeldConn(relaySide, bytes("Host: web"), 1024);
  assertEquals(text(held.takeArrived()), "Host: web");
  await writeAll(client, bytes("body"));
  const buffer = new Uint8Array(16);
  const count = await held.read(buffer);
  assertEquals(text(buffer.subarray(0, count!)), "body");
  held.close();
  client.close();
});

Deno.test("held connection: bytes that arrive after the hand-over come from the read under way", async () => {
  const [client, relaySide] = await socketPair();
  const held = new HeldConn(relaySide, new Uint8Array(0), 1024);
  assertEquals(held.takeArrived().length, 0, "nothing arrived yet");
  await writeAll(client, bytes("hello"));
  const small = new Uint8Array(3);
  const first = await held.read(small);
  assertEquals(text(small.subarray(0, first!)), "hel", "a short buffer takes part");
  const rest = await held.read(small);
  assertEquals(text(small.subarray(0, rest!)), "lo", "and the next read the rest");
  await client.closeWrite();
  assertEquals(await held.read(small), null);
  held.close();
  client.close();
});

Deno.test("held connection: the splice reads into the held buffer, done or under way", async () => {
  const [client, relaySide] = await socketPair();
  const early = new HeldConn(relaySide, new Uint8Array(0), 1024);
  const spare = early.takeSpareBuffer();
  assert(spare?.length === 1024, "a read under way offers its buffer");
  await writeAll(client, bytes("late"));
  const count = await early.read(spare);
  assertEquals(text(spare.subarray(0, count!)), "late", "that read's bytes, in place");
  await writeAll(client, bytes("next"));
  const next = await early.read(spare);
  assertEquals(text(spare.subarray(0, next!)), "next", "then reads go to the connection");
  client.close();
  relaySide.close();

  const [client2, relaySide2] = await socketPair();
  const done = new HeldConn(relaySide2, new Uint8Array(0), 1024);
  await writeAll(client2, bytes("first"));
  await eventually(() => done.takeArrived().length > 0, "the held read's bytes came and are taken");
  assertEquals(done.takeSpareBuffer()?.length, 1024, "after its bytes were taken, the buffer");
  assertEquals(done.takeSpareBuffer(), undefined, "given once");
  client2.close();
  relaySide2.close();
});

Deno.test("port front: ports from the range kept across withdrawal, pins, and arrivals", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const pinnedPort = probe.addr.port;
  probe.close();
  const arrivals: Arrival[] = [];
  const range = { first: 30_000 + Math.floor(Math.random() * 5000), last: 0 };
  range.last = range.first + 19;
  const front = new PortFront({
    pinned: new Map([["pinned", { hostname: "127.0.0.1", port: pinnedPort }]]),
    listenHost: "127.0.0.1",
    portRange: range,
  }, {
    arrive: (arrival) => arrivals.push(arrival),
    onAcceptError: () => {},
    clientOf: (conn) => Promise.resolve(conn.remoteAddr),
  });
  try {
    assertEquals(front.publish({ service: "pinned", kind: "tcp", port: 1 }), {
      reason: `service pinned is pinned to port ${pinnedPort} by the relay's --expose`,
    });
    const web = front.publish({ service: "web", kind: "tcp" });
    assert(web && "address" in web, "web gets a port from the range");
    const port = Number(web.address.split(":")[1]);
    assert(port >= range.first && port <= range.last, `${port} is in the range`);
    front.withdraw("web");
    // Deno frees a closed listener's port once its pending accept is cancelled, a turn later.
    await new Promise((resolve) => setTimeout(resolve, 0));
    const again = front.publish({ service: "web", kind: "tcp" });
    assertEquals(again, web, "a service that comes back gets its port again");
    const client = await Deno.connect({ hostname: "127.0.0.1", port });
    await eventually(() => arrivals.length > 0, "the client arrived at the front");
    const [arrived] = arrivals;
    assertEquals([arrived.service, arrived.head.length], ["web", 0]);
    assertEquals(arrived.client.port, client.localAddr.port, "the client's own address");
    front.refuse(arrived);
    assertEquals(await client.read(new Uint8Array(1)), null, "refused means closed");
    client.close();
  } finally {
    front.close();
  }
});
