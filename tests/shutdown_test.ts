/**
 * End to end: SIGTERM lets active transfers finish and exits 0; connections still open at the
 * deadline are closed; a second signal stops at once.
 */

import { assert, assertEquals, assertMatch } from "./assert.ts";
import {
  adminOf,
  connect,
  echo,
  eventually,
  randomBytes,
  readAll,
  readExactly,
  startAgentProcess,
  startRelayProcess,
  startServer,
  tempStateDir,
} from "./helpers.ts";
import { selfSigned } from "./certs.ts";
import { finishTransfers, refused, Shim, startTransfers, statusOf } from "./faults.ts";
import { writeAll } from "../lib/net.ts";

for (const target of ["relay", "agent"] as const) {
  Deno.test(`SIGTERM to the ${target}: active transfers finish, new clients are refused, exit 0`, async () => {
    const blob = randomBytes(16 * 1024 * 1024);
    await using server = startServer((conn) => writeAll(conn, blob));
    await using relay = await startRelayProcess(["--shutdown-timeout", "20"]);
    await using agent = await startAgentProcess(relay, { blob: server.port }, [
      "--shutdown-timeout",
      "20",
    ]);
    const port = agent.publicPort.blob;
    const transfers = await startTransfers(port, 5, 256 * 1024);
    const proc = target === "relay" ? relay : agent;
    const signalledAt = performance.now();
    Deno.kill(proc.pid, "SIGTERM");
    await proc.waitFor(/waiting up to 20 s for \d+ open connection\(s\) to finish/);
    // Stopped accepting: the service's port is closed once its agent or relay stops.
    await relay.waitFor(/blob offline|shutting down/);
    await refused(port);
    await finishTransfers(transfers, blob);
    assertEquals((await proc.status).code, 0, proc.output);
    await proc.waitFor(/all connections finished/);
    const took = performance.now() - signalledAt;
    assert(took < 20_000, `exited ${took} ms after the signal`);
  });
}

Deno.test("SIGTERM: connections still open at --shutdown-timeout are closed, and the exit is still 0", async () => {
  await using server = startServer(echo);
  await using relay = await startRelayProcess(["--shutdown-timeout", "0.5"]);
  await using agent = await startAgentProcess(relay, { echo: server.port });
  const conn = await connect(agent.publicPort.echo);
  await writeAll(conn, new TextEncoder().encode("hi"));
  await readExactly(conn, 2); // a live connection that will not end by itself
  // The answer may have come early: wait for the data channel, which the drain waits for.
  await eventually(async () => (await statusOf(relay)).pending === "0", "the client is spliced");
  const signalledAt = performance.now();
  Deno.kill(relay.pid, "SIGTERM");
  assertEquals((await relay.status).code, 0, relay.output);
  const took = performance.now() - signalledAt;
  assert(took >= 450 && took < 3_000, `exited ${took} ms after the signal`);
  assertMatch(relay.output, /closing 2 connection\(s\) still open after 0\.5 s/);
  assertEquals((await readAll(conn)).length, 0, "the client sees the close");
  conn.close();
});

for (const through of ["the agent port", "the HTTPS front (--https-agents)"]) {
  Deno.test(`SIGTERM to the relay: a client still waiting for its data channel is served, not turned away (agent through ${through})`, async () => {
    await using server = startServer(echo);
    const https = through.startsWith("the HTTPS");
    const httpsFront = async () => {
      const dir = tempStateDir();
      await selfSigned(dir, "web", "/CN=*.test.internal", "DNS:*.test.internal"); // its clients'
      return [
        ...["--https", "127.0.0.1:0", "--domain", "test.internal", "--https-agents", "localhost"],
        ...["--https-cert", `${dir}/web.pem`, "--https-key", `${dir}/web.key`],
      ];
    };
    await using relay = await startRelayProcess([
      ...["--shutdown-timeout", "20"],
      ...https ? await httpsFront() : [],
    ]);
    const [, httpsPort] = https
      ? await relay.waitFor(/listening for HTTPS clients on .*:(\d+) /)
      : [];
    await using shim = new Shim(https ? Number(httpsPort) : relay.port); // slow when held
    await using agent = await startAgentProcess(relay, { echo: server.port }, [
      ...["--relay", `${https ? "tls://localhost" : "127.0.0.1"}:${shim.port}`],
      ...["--spares", "0", "--early-data", "off"], // every client waits for a data channel
    ]);
    const port = agent.publicPort.echo;
    shim.hold();
    const conn = await connect(port);
    await writeAll(conn, new TextEncoder().encode("late"));
    await eventually(async () => (await statusOf(relay)).pending === "1", "the client is held");
    Deno.kill(relay.pid, "SIGTERM");
    await relay.waitFor(/waiting for the data channels of 1 client\(s\) held/);
    await refused(port); // no new client meanwhile
    const health = await fetch(`http://${await adminOf(relay)}/healthz/echo`);
    assertEquals(
      [health.status, (await health.text()).trim()],
      [503, "service echo: the relay is shutting down"],
      "a balancer checking the relay sends new clients elsewhere",
    );
    shim.release();
    assertEquals(new TextDecoder().decode(await readExactly(conn, 4)), "late");
    await conn.closeWrite();
    assertEquals((await readAll(conn)).length, 0, "then the echo ends");
    conn.close();
    assertEquals((await relay.status).code, 0, relay.output);
    await relay.waitFor(/all connections finished/);
  });
}

for (const target of ["relay", "agent"] as const) {
  Deno.test(`a second signal to the ${target} stops it at once, without waiting for the deadline`, async () => {
    await using server = startServer(echo);
    await using relay = await startRelayProcess(["--shutdown-timeout", "60"]);
    await using agent = await startAgentProcess(relay, { echo: server.port }, [
      "--shutdown-timeout",
      "60",
    ]);
    const conn = await connect(agent.publicPort.echo);
    await writeAll(conn, new TextEncoder().encode("hi"));
    await readExactly(conn, 2);
    // The answer may have come early: wait for the data channel, which the drain waits for.
    await eventually(async () => (await statusOf(relay)).pending === "0", "the client is spliced");
    const proc = target === "relay" ? relay : agent;
    Deno.kill(proc.pid, "SIGTERM");
    await proc.waitFor(/waiting up to 60 s/);
    const secondAt = performance.now();
    Deno.kill(proc.pid, "SIGINT");
    assertEquals((await proc.status).code, 1);
    const took = performance.now() - secondAt;
    assert(took < 1_000, `exited ${took} ms after the second signal`);
    conn.close();
  });
}
