/**
 * Live services on the agent (lib/agent/live_services.ts): its --config file edited and SIGHUP
 * sent, a service is added and another removed while a transfer on a third runs across the
 * change; a broken file changes nothing.
 */

import { assertEquals } from "./assert.ts";
import {
  echo,
  Proc,
  randomBytes,
  request,
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
