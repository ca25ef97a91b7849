/**
 * End to end under load: a slow reader must not make the tunnel buffer without bound, and tens
 * of thousands of connections ending every which way must leave nothing behind.
 */

import { assert, assertEquals } from "./assert.ts";
import {
  connect,
  echo,
  eventually,
  fakeAgent,
  freePort,
  randomBytes,
  readAll,
  readExactly,
  request,
  startAgentProcess,
  startRelayProcess,
  startServer,
} from "./helpers.ts";
import { rssBytes, statusOf } from "./faults.ts";
import { writeAll } from "../lib/net.ts";

const MiB = 1024 * 1024;

Deno.test("slow reader: a server offering 1 GiB to a client reading 1 MiB/s; relay and agent memory stay flat", async () => {
  const chunk = randomBytes(MiB);
  let offered = 0;
  await using server = startServer(async (conn) => {
    while (offered < 1024 * MiB) {
      await writeAll(conn, chunk);
      offered += chunk.length;
    }
  });
  await using relay = await startRelayProcess();
  await using agent = await startAgentProcess(relay, { bulk: server.port });
  const baseline = { relay: rssBytes(relay.pid), agent: rssBytes(agent.pid) };
  const peak = { ...baseline };
  const conn = await connect(agent.publicPort.bulk);
  const buffer = new Uint8Array(64 * 1024);
  let received = 0;
  const started = performance.now();
  for (let elapsed = 0; elapsed < 4_000; elapsed = performance.now() - started) {
    const allowed = Math.floor((elapsed / 1000) * MiB) - received;
    if (allowed > 0) {
      received += (await conn.read(buffer.subarray(0, Math.min(allowed, buffer.length))))!;
    } else {
      await new Promise((resolve) => setTimeout(resolve, 50)); // the reader's pace, on purpose
    }
    peak.relay = Math.max(peak.relay, rssBytes(relay.pid));
    peak.agent = Math.max(peak.agent, rssBytes(agent.pid));
  }
  conn.close();
  const growth = { relay: peak.relay - baseline.relay, agent: peak.agent - baseline.agent };
  const report = `relay +${(growth.relay / MiB).toFixed(1)} MiB, agent +${
    (growth.agent / MiB).toFixed(1)
  } MiB, server got ${offered / MiB} MiB out, client read ${(received / MiB).toFixed(1)} MiB`;
  console.log(report);
  assert(growth.relay < 32 * MiB && growth.agent < 32 * MiB, report);
  // Backpressure reached the server: it could hand over little more than what sockets hold.
  assert(offered < 128 * MiB, report);
});

/** How a churn connection ends. */
type Ending = "clean" | "half-close" | "reset" | "dial failure" | "expired" | "bad handshake";

/** The mix of endings, by weight out of 20. */
const MIX: [Ending, number][] = [
  ["clean", 7],
  ["half-close", 5],
  ["reset", 4],
  ["dial failure", 2],
  ["expired", 1],
  ["bad handshake", 1],
];

Deno.test("churn: 20,000 connections ending every which way leave sockets, tables and memory at baseline", async () => {
  const TOTAL = 20_000;
  const CONCURRENCY = 50;
  await using server = startServer(echo);
  // Plain TCP: this test is about porthole's own bookkeeping. Over TLS, Deno keeps each closed
  // TLS socket open for up to ~10 s under load, so fds return to baseline only that much later.
  await using relay = await startRelayProcess(["--connect-timeout", "0.3", "--insecure"]);
  await using agent = await startAgentProcess(relay, {
    echo: server.port,
    dead: freePort(), // nothing listens: the agent's dial fails
  }, ["--id", "churn", "--spares", "0"]); // the classic flow: every socket accounted for
  // (spare data channels come and go with the load: tests/spares_test.ts)
  // A service whose agent never opens data channels: its clients' connection ids expire.
  const late = await fakeAgent(relay, "late");
  late.channel.send({ type: "register", service: "late" });
  const registered = await late.channel.receive();
  assert(registered?.type === "registered");
  const latePort = Number(registered.address.split(":").pop());
  const ignoring = (async () => {
    while ((await late.channel.receive().catch(() => null)) !== null) {
      // requests for data channels are left unanswered
    }
  })();
  const payload = new TextEncoder().encode("churn ".repeat(200));

  const endings: Ending[] = MIX.flatMap(([ending, weight]) => Array(weight).fill(ending));
  const run = async (ending: Ending): Promise<void> => {
    switch (ending) {
      case "clean": { // full close after the answer
        const conn = await connect(agent.publicPort.echo);
        await writeAll(conn, payload);
        await readExactly(conn, payload.length);
        conn.close();
        return;
      }
      case "half-close": { // send, shut down writing, read the whole answer
        const reply = await request(agent.publicPort.echo, payload);
        assertEquals(reply.length, payload.length);
        return;
      }
      case "reset": { // close with most of the answer unread: the kernel sends RST
        const conn = await connect(agent.publicPort.echo);
        await writeAll(conn, payload);
        await conn.read(new Uint8Array(1)); // the tunnel is up end to end
        conn.close();
        return;
      }
      case "dial failure":
      case "expired": { // closed by the relay, at once or after --connect-timeout
        const conn = await connect(ending === "expired" ? latePort : agent.publicPort.dead);
        await readAll(conn).catch(() => {});
        conn.close();
        return;
      }
      case "bad handshake": { // garbage on the agent port: an oversized frame
        const conn = await connect(relay.port);
        await writeAll(conn, new Uint8Array([0xff, 0xff, 0xff, 0xff])).catch(() => {});
        await readAll(conn).catch(() => {});
        conn.close();
        return;
      }
    }
  };
  const churn = async (count: number) => {
    let next = 0;
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      for (let i; (i = next++) < count;) await run(endings[i % endings.length]);
    }));
  };

  try {
    await churn(2_000); // warm up: code compiled, buffers pooled, allocator grown
    // Baseline once the warm-up's last clients (some wait for --connect-timeout) are gone.
    await eventually(async () => {
      const [r, a] = [await statusOf(relay), await statusOf(agent)];
      return r.pending === "0" && r.connections === "2" && a.connections === "0";
    }, "warm-up ended");
    const sockets = { relay: relay.socketCount(), agent: agent.socketCount() };
    const rss = { relay: rssBytes(relay.pid), agent: rssBytes(agent.pid) };
    const heap = {
      relay: Number((await statusOf(relay)).heap_mib),
      agent: Number((await statusOf(agent)).heap_mib),
    };
    const started = performance.now();
    await churn(TOTAL);
    const took = performance.now() - started;

    await eventually(
      () => relay.socketCount() === sockets.relay && agent.socketCount() === sockets.agent,
      `sockets back to baseline (relay: ${sockets.relay}, agent: ${sockets.agent})`,
    );
    const relayStatus = await statusOf(relay);
    assertEquals(
      [relayStatus.agents, relayStatus.pending, relayStatus.connections],
      ["2", "0", "2"],
      "only the two control channels remain",
    );
    const agentStatus = await statusOf(agent);
    assertEquals(agentStatus.connections, "0");
    const heapGrowth = {
      relay: Number(relayStatus.heap_mib) - heap.relay,
      agent: Number(agentStatus.heap_mib) - heap.agent,
    };
    const rssGrowth = {
      relay: (rssBytes(relay.pid) - rss.relay) / MiB,
      agent: (rssBytes(agent.pid) - rss.agent) / MiB,
    };
    const report = `${TOTAL} connections in ${(took / 1000).toFixed(1)} s; from baseline: ` +
      `heap relay ${heapGrowth.relay.toFixed(1)} MiB, agent ${heapGrowth.agent.toFixed(1)} MiB; ` +
      `RSS relay ${rssGrowth.relay.toFixed(1)} MiB, agent ${rssGrowth.agent.toFixed(1)} MiB`;
    console.log(report);
    // Live objects come back to where they were; resident memory may keep the allocator's
    // high-water mark (it levels off, as longer runs show) but must stay within bounds.
    assert(heapGrowth.relay < 8 && heapGrowth.agent < 8, report);
    assert(rssGrowth.relay < 96 && rssGrowth.agent < 96, report);
  } catch (error) {
    const tail = (proc: { output: string }) => proc.output.split("\n").slice(-15).join("\n");
    throw new Error(`${error}\nrelay:\n${tail(relay)}\nagent:\n${tail(agent)}`);
  } finally {
    late.channel.close();
    await ignoring;
  }
});
