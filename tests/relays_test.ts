/**
 * An agent attached to several relays, as real processes: it serves clients arriving at each,
 * keeps serving through one when the other is killed, and is back on the killed one when it
 * restarts; a relay name with several addresses (as DNS answers for relays behind one name) is
 * each of them.
 */

import { assertEquals, assertMatch } from "./assert.ts";
import {
  adminOf,
  echo,
  echoed,
  freePort,
  Proc,
  randomBytes,
  readAll,
  startAgentProcess,
  startRelayProcess,
  startServer,
  tempStateDir,
} from "./helpers.ts";
import { finishTransfers, refused, startTransfers } from "./faults.ts";
import { writeAll } from "../lib/net.ts";

/** A relay's arguments: its agent port and the pinned public port of `blob`, kept on restart. */
function relayArgs(stateDir: string, hostname = "127.0.0.1", port = freePort(hostname)) {
  return {
    listen: port,
    blob: freePort(hostname),
    args(this: { listen: number; blob: number }) {
      return [
        "--listen",
        `${hostname}:${this.listen}`,
        "--expose",
        `blob=${hostname}:${this.blob}`,
        "--state-dir",
        stateDir,
      ];
    },
  };
}

Deno.test("two relays: an agent on both serves each; one killed -9, transfers through the other complete; restarted, the agent is back", async () => {
  const blob = randomBytes(4 * 1024 * 1024);
  await using blobServer = startServer((conn) => writeAll(conn, blob));
  const stateDir = tempStateDir(); // one certificate for both, so one --fingerprint trusts both
  const a = relayArgs(stateDir), b = relayArgs(stateDir);
  let relayA = await startRelayProcess(a.args());
  await using _relayB = await startRelayProcess(b.args());
  await using agent = await startAgentProcess(relayA, { blob: blobServer.port }, [
    "--relay",
    `127.0.0.1:${a.listen}`,
    "--relay",
    `127.0.0.1:${b.listen}`,
    "--reconnect-max",
    "1",
  ]);
  try {
    await agent.waitFor(new RegExp(`service blob .* is reachable at 127\\.0\\.0\\.1:${b.blob}$`));
    const throughA = await startTransfers(a.blob, 2, 64 * 1024);
    const throughB = await startTransfers(b.blob, 3, 64 * 1024);
    await finishTransfers(throughA, blob);
    const admin = await adminOf(agent);
    const connected = async () => {
      const { agent: { relays } } = await (await fetch(`http://${admin}/status`)).json();
      return relays.map(({ connected }: { connected: boolean }) => connected);
    };
    assertEquals(await connected(), [true, true], "the agent's /status: both relays connected");

    const seen = agent.lines.length;
    const moreThroughB = await startTransfers(b.blob, 3, 64 * 1024);
    Deno.kill(relayA.pid, "SIGKILL");
    await relayA.status;
    await finishTransfers([...throughB, ...moreThroughB], blob); // none through B was disturbed
    await refused(a.blob);
    await finishTransfers(await startTransfers(b.blob, 2, 1024), blob);
    await agent.waitFor(/cannot reach the relay at 127\.0\.0\.1:\d+: connection refused/, {
      from: seen,
    });
    assertEquals(await connected(), [false, true], "the agent's /status: only B connected");
    const status = new Proc("agent", ["status", "--admin", admin]);
    assertEquals((await status.status).code, 0, status.output);
    assertMatch(status.output, /: 1 of 2 relays connected, up /);
    assertMatch(status.output, new RegExp(`^127\\.0\\.0\\.1:${a.listen} +no +`, "m"));
    assertMatch(status.output, new RegExp(`^127\\.0\\.0\\.1:${b.listen} +yes +TLS, direct`, "m"));

    relayA = await startRelayProcess(a.args());
    await agent.waitFor(
      new RegExp(`service blob .* is reachable at 127\\.0\\.0\\.1:${a.blob}$`),
      { from: seen },
    );
    await finishTransfers(await startTransfers(a.blob, 2, 1024), blob);
    await finishTransfers(await startTransfers(b.blob, 2, 1024), blob);
  } finally {
    await relayA.stop();
  }
});

Deno.test("two relays, one refusing the agent: it serves through the other; every relay refusing, it exits 3", async () => {
  await using server = startServer(echo);
  const stateDir = tempStateDir();
  const another = { PORTHOLE_SECRET: "another-secret-of-32-characters!" };
  await using good = await startRelayProcess(["--state-dir", stateDir]);
  await using wrong = await startRelayProcess(["--state-dir", stateDir], another);
  await using agent = await startAgentProcess(good, { echo: server.port }, [
    ...["--relay", `127.0.0.1:${good.port}`, "--relay", `127.0.0.1:${wrong.port}`],
  ]);
  await agent.waitFor(
    new RegExp(
      `relay 127\\.0\\.0\\.1:${wrong.port}: .*failed authentication.*; going on with the other`,
    ),
  );
  const hello = new TextEncoder().encode("hello");
  assertEquals(new TextDecoder().decode(await echoed(agent.publicPort.echo, hello)), "hello");
  const status = new Proc("agent", ["status", "--admin", await adminOf(agent)]);
  assertEquals((await status.status).code, 0, status.output);
  assertMatch(status.output, /: 1 of 2 relays connected, up /);
  assertMatch(status.output, new RegExp(`^127\\.0\\.0\\.1:${wrong.port} +no: refused`, "m"));

  await using alsoWrong = await startRelayProcess(["--state-dir", stateDir], another);
  const refusedByAll = new Proc("agent", [
    ...["--relay", `127.0.0.1:${wrong.port}`, "--relay", `127.0.0.1:${alsoWrong.port}`],
    ...[...good.trust, "--service", `echo=127.0.0.1:${server.port}`, "--admin", "off"],
  ]);
  assertEquals((await refusedByAll.status).code, 3, refusedByAll.output);
  assertMatch(refusedByAll.output, /failed authentication/);
});

Deno.test("a relay name with two IPv4 addresses: the agent attaches to each, and follows its DNS answer", async () => {
  await using server = startServer(echo);
  const stateDir = tempStateDir();
  const port = freePort("127.0.0.2");
  const one = relayArgs(stateDir, "127.0.0.2", port), two = relayArgs(stateDir, "127.0.0.3", port);
  const three = relayArgs(stateDir, "127.0.0.4", port);
  await using relayOne = await startRelayProcess(one.args());
  await using relayTwo = await startRelayProcess(two.args());
  await using _relayThree = await startRelayProcess(three.args());
  // The agent alone sees a hosts file where the name has both addresses, as a DNS answer would.
  const hosts = Deno.makeTempFileSync({ suffix: ".hosts" });
  const answer = (...addresses: string[]) =>
    Deno.writeTextFileSync( // in place: the agent's /etc/hosts is this file, bind-mounted
      hosts,
      "127.0.0.1 localhost\n" + addresses.map((at) => `${at} relays.test\n`).join(""),
    );
  // Its IPv6 address is another way to one of them, not a third relay.
  answer("127.0.0.2", "127.0.0.3", "::1");
  const wrap = [
    "unshare",
    "--mount",
    "sh",
    "-c",
    `mount --bind ${hosts} /etc/hosts && exec "$0" "$@"`,
  ];
  await using agent = new Proc(
    "agent",
    [
      "--relay",
      `relays.test:${port}`,
      ...relayOne.trust,
      "--service",
      `blob=127.0.0.1:${server.port}`,
      "--admin",
      "off",
      "--relay-dns-refresh",
      "0.2",
    ],
    {},
    undefined,
    wrap,
  );
  const reachable = (address: string, from = 0) =>
    agent.waitFor(
      new RegExp(`service blob .* is reachable at ${address.replaceAll(".", "\\.")}:`),
      {
        from,
      },
    );
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  const hello = new TextEncoder().encode("hello");
  try {
    await agent.waitFor(/--relay relays\.test:\d+: the name has 2 addresses; attaching to each/);
    for (const address of ["127.0.0.2", "127.0.0.3"]) await reachable(address);
    assertEquals(text(await echoed(one.blob, hello, "127.0.0.2")), "hello");
    assertEquals(text(await echoed(two.blob, hello, "127.0.0.3")), "hello");

    // The name moves from .2 to .4: the agent attaches to .4 and leaves .2; its connection
    // through .2 goes on, and .3 is not disturbed.
    using held = await Deno.connect({ hostname: "127.0.0.2", port: one.blob });
    await writeAll(held, hello);
    const seen = agent.lines.length;
    const twoSeen = relayTwo.lines.length;
    answer("127.0.0.3", "127.0.0.4");
    await agent.waitFor(
      /relay relays\.test:\d+ \(127\.0\.0\.4\): in the DNS answer now; attaching/,
    );
    await agent.waitFor(/relay relays\.test:\d+ \(127\.0\.0\.2\): no longer in the DNS answer/);
    await reachable("127.0.0.4", seen);
    await relayOne.waitFor(/agent \S+ disconnected/);
    assertEquals(text(await echoed(three.blob, hello, "127.0.0.4")), "hello");
    assertEquals(text(await echoed(two.blob, hello, "127.0.0.3")), "hello");
    await held.closeWrite();
    assertEquals(text(await readAll(held)), "hello", "the connection through .2 went on");
    assertEquals(
      relayTwo.lines.slice(twoSeen).filter((line) => /agent .*(dis)?connected/.test(line)),
      [],
      "the agent stayed on .3",
    );
  } finally {
    Deno.removeSync(hosts);
  }
});
