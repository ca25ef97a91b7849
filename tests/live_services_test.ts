/**
 * Live services on the agent (lib/agent/live_services.ts): its --config file edited and SIGHUP
 * sent, a service is added and another removed while a transfer on a third runs across the
 * change; a broken file changes nothing.
 */

import { assertEquals, assertMatch } from "./assert.ts";
import {
  adminOf,
  connect,
  echo,
  eventually,
  Proc,
  randomBytes,
  readAll,
  readExactly,
  request,
  startAgentProcess,
  startRelayProcess,
  startServer,
  tempConfigFile,
} from "./helpers.ts";
import { finishTransfers, refused, startTransfers } from "./faults.ts";
import { writeAll } from "../lib/net.ts";

Deno.test("live services: SIGHUP after editing the config adds and removes services; others' transfers finish intact", async () => {
  const blob = randomBytes(8 * 1024 * 1024);
  await using bulk = startServer(async (conn) => {
    await writeAll(conn, blob).catch(() => {});
    conn.close();
  });
  await using echoServer = startServer(echo);
  await using relay = await startRelayProcess();
  const config = (services: Record<string, number>) =>
    [
      `relay = "127.0.0.1:${relay.port}"`,
      `fingerprint = "${relay.fingerprint}"`,
      'id = "live"',
      'admin = "off"',
      ...Object.entries(services).flatMap(([id, port]) => [
        `[services.${id}]`,
        `target = "127.0.0.1:${port}"`,
      ]),
    ].join("\n") + "\n";
  const file = tempConfigFile(config({ keep: bulk.port, old: echoServer.port }));
  await using agent = new Proc("agent", ["--config", file]);
  const reachable = async (id: string, from = 0) =>
    Number(
      (await agent.waitFor(new RegExp(`service ${id} \\(.*\\) is reachable at .*:(\\d+)$`), {
        from,
      }))[1],
    );
  const [keepPort, oldPort] = [await reachable("keep"), await reachable("old")];
  const transfers = await startTransfers(keepPort, 2, 64 * 1024);

  const from = agent.lines.length;
  await Deno.writeTextFile(file, config({ keep: bulk.port, new: echoServer.port }));
  Deno.kill(agent.pid, "SIGHUP");
  const newPort = await reachable("new", from);
  const answer = await request(newPort, new TextEncoder().encode("new service"));
  assertEquals(new TextDecoder().decode(answer), "new service");
  await relay.waitFor(/agent live: service old withdrawn/);
  await refused(oldPort);

  await Deno.writeTextFile(file, "relay = [broken\n");
  Deno.kill(agent.pid, "SIGHUP");
  await agent.waitFor(/SIGHUP: .*; the services stay as they were/);
  const still = await request(newPort, new TextEncoder().encode("still here"));
  assertEquals(new TextDecoder().decode(still), "still here");

  await finishTransfers(transfers, blob);
});

Deno.test("live services: agent service add, ls and rm through the admin API, and agent status", async () => {
  await using echoServer = startServer(echo);
  await using relay = await startRelayProcess();
  await using agent = await startAgentProcess(relay, { first: echoServer.port }, [
    ...["--id", "cli", "--shutdown-timeout", "0.5"],
  ]);
  const admin = await adminOf(agent);
  const run = async (...args: string[]) => {
    const proc = new Proc("agent", [...args, "--admin", admin]);
    return { code: (await proc.status).code, output: proc.output };
  };
  const from = agent.lines.length;
  const added = await run("service", "add", `extra=127.0.0.1:${echoServer.port}`);
  assertEquals(added, { code: 0, output: "services added: extra" });
  const [, port] = await agent.waitFor(/service extra \(.*\) is reachable at .*:(\d+)$/, { from });
  const answer = await request(Number(port), new TextEncoder().encode("added live"));
  assertEquals(new TextDecoder().decode(answer), "added live");

  const listed = await run("service", "ls");
  assertEquals(listed.code, 0);
  assertMatch(
    listed.output,
    new RegExp(`^extra +127\\.0\\.0\\.1:${echoServer.port} +tcp +any`, "m"),
  );
  // The admin address may come from the agent's --config file too.
  const config = tempConfigFile(`admin = "${admin}"\n`);
  const fromConfig = new Proc("agent", ["status", "--config", config]);
  assertEquals((await fromConfig.status).code, 0, fromConfig.output);
  assertMatch(fromConfig.output, /^agent cli: relay connected/m);
  const status = await run("status");
  assertMatch(status.output, /^agent cli: relay connected \(TLS, direct\)/m);
  assertMatch(
    status.output,
    new RegExp(`^extra +127\\.0\\.0\\.1:${echoServer.port} +tcp +yes +.*:${port}$`, "m"),
  );

  const bad = await run("service", "add", "broken=nowhere");
  assertEquals(bad.code, 2);
  assertMatch(bad.output, /"nowhere" is not HOST:PORT/);
  for (
    const [body, why] of [
      [{ target: 5 }, /"target" must be HOST:PORT/],
      [{ target: "127.0.0.1:1", kind: "ftp" }, /"kind" must be tcp, http or tls/],
      [[1], /must be a JSON object/],
    ] as const
  ) {
    const answer = await fetch(`http://${admin}/services/wrong`, {
      method: "PUT",
      body: JSON.stringify(body),
    });
    assertEquals(answer.status, 400);
    assertMatch(await answer.text(), why);
  }
  const lingering = await connect(Number(port));
  await writeAll(lingering, new TextEncoder().encode("still talking"));
  await readExactly(lingering, 13);
  await eventually(
    async () => (await (await fetch(`http://${admin}/status`)).json()).connections.length === 1,
    "the agent splices the lingering connection",
  );
  const removed = await run("service", "rm", "extra");
  assertEquals(removed, { code: 0, output: "services removed: extra" });
  await relay.waitFor(/agent cli: service extra withdrawn/);
  await refused(Number(port));
  assertEquals((await readAll(lingering)).length, 0, "closed after --shutdown-timeout");
  await agent.waitFor(
    /service extra was removed: closed 1 connection\(s\) still open after 0\.5 s/,
  );
  lingering.close();
  const unknown = await run("service", "rm", "extra");
  assertEquals(unknown.code, 1);
  assertMatch(unknown.output, /answered 404: no service extra/);
});
