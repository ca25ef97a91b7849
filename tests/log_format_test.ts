/** `--log-format json` (lib/log.ts): every line a JSON object, a closed connection's fields typed. */

import { assert, assertEquals } from "./assert.ts";
import { echo, freshPortRange, Proc, request, startServer } from "./helpers.ts";

Deno.test("--log-format json: one JSON object per line, the message's key=value pairs as fields, the same conn id on relay and agent", async () => {
  await using service = startServer(echo);
  const json = ["--log-format", "json", "--admin", "127.0.0.1:0", "--insecure"];
  await using relay = new Proc("relay", [
    ...["--listen", "127.0.0.1:0", "--port-range", freshPortRange(), ...json],
  ]);
  const [, relayPort] = await relay.waitFor(/"listening for agents on [^"]*:(\d+)"/);
  await using agent = new Proc("agent", [
    ...["--relay", `127.0.0.1:${relayPort}`, "--id", "json-agent", ...json],
    ...["--service", `echo=127.0.0.1:${service.port}`],
  ]);
  const [, port] = await agent.waitFor(/service echo \(.*\) is reachable at [^"]*:(\d+)"/);
  await request(Number(port), new TextEncoder().encode("12345"));
  const [closed] = await relay.waitFor(/^\{.*"message":"connection closed: .*\}$/);
  const entry = JSON.parse(closed);
  assertEquals(
    [entry.level, entry.component, entry.service, entry.agent, entry.from_client, entry.to_client],
    ["info", "relay", "echo", "json-agent", 5, 5],
  );
  assert(!Number.isNaN(Date.parse(entry.time)), `a time: ${entry.time}`);
  const [served] = await agent.waitFor(/^\{.*"message":"connection closed: .*\}$/);
  assertEquals(
    [JSON.parse(served).conn, typeof entry.conn],
    [entry.conn, "string"],
    "relay and agent name the connection alike",
  );
  for (const line of [...relay.lines, ...agent.lines]) {
    const parsed = JSON.parse(line);
    assert(typeof parsed.message === "string" && typeof parsed.level === "string", line);
  }
});
