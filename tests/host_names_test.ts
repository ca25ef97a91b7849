/** Host names besides ID.DOMAIN: claimed by an agent, allowed (or not) by the relay's config. */

import { assertEquals } from "./assert.ts";
import { SECRET, startAgentProcess, startRelayProcess, tempConfigFile } from "./helpers.ts";
import { SAYS_WEB, startNginx } from "./nginx.ts";
import { HostNames } from "../lib/front/host_names.ts";
import { hostMatches } from "../lib/relay/policy.ts";

Deno.test("host names in-process: patterns, and no name taken from another service", () => {
  assertEquals(
    [hostMatches("a.apps.test", "*.apps.test"), hostMatches("a.b.apps.test", "*.apps.test")],
    [true, true],
  );
  assertEquals([hostMatches("apps.test", "*.apps.test"), hostMatches("x.test", "y.test")], [
    false,
    false,
  ]);
  const names = new HostNames({ domain: "tunnel.test", kind: "http" });
  assertEquals(names.publish({ service: "web", kind: "http", hosts: ["www.example.test"] }), {
    host: "web.tunnel.test",
  });
  assertEquals(names.publish({ service: "thief", kind: "http", hosts: ["web.tunnel.test"] }), {
    reason: "host name web.tunnel.test is already service web's",
  });
  assertEquals(names.publish({ service: "db", kind: "tcp" }), undefined, "not an HTTP service");
  names.withdraw("web");
  assertEquals(
    [names.serviceAt("www.example.test"), names.serviceAt("WEB.tunnel.test")],
    [undefined, "web"],
    "claimed names are freed, ID.DOMAIN stays for the 502",
  );
  const proxy = new HostNames({ domain: "tunnel.test", bareIds: true });
  assertEquals(proxy.publish({ service: "db", kind: "tcp", hosts: ["db.example.test"] }), {
    host: "db.tunnel.test",
  });
  assertEquals(
    ["db", "DB.tunnel.test", "db.example.test"].map((name) => proxy.serviceAt(name)),
    ["db", "db", "db"],
    "the proxy front: every kind, by bare id too",
  );
});

Deno.test("host names: an allowed name routes to its service; one not allowed is refused", async () => {
  const config = tempConfigFile(`
[agents.office]
secret = "${SECRET}"
services = ["*"]
hosts = ["www.example.test", "*.apps.test"]
`);
  await using nginx = await startNginx(SAYS_WEB);
  await using relay = await startRelayProcess([
    "--config",
    config,
    "--http",
    "127.0.0.1:0",
    "--domain",
    "tunnel.test",
  ]);
  const [, port] = await relay.waitFor(/listening for HTTP clients on .*:(\d+) /);
  await using agent = await startAgentProcess(relay, {}, [
    "--id",
    "office",
    "--service",
    `web=http://127.0.0.1:${nginx.port}`,
    "--host",
    "web=www.example.test",
    "--host",
    "web=shop.apps.test",
    "--service",
    `other=http://127.0.0.1:${nginx.port}`,
    "--host",
    "other=evil.example.test",
    "--service",
    `thief=http://127.0.0.1:${nginx.port}`,
    "--host",
    "thief=web.tunnel.test",
  ]);
  await agent.waitFor(/service web is also reachable at http:/);
  await agent.waitFor(
    /service other was refused by the relay: agent office may not claim host name evil\.example\.test \(see hosts in its \[agents\] entry\)/,
  );
  await agent.waitFor(
    /service thief was refused by the relay: agent office may not claim host name web\.tunnel\.test/,
  );
  const get = async (host: string) => {
    const output = await new Deno.Command("curl", {
      args: ["-sS", "--resolve", `${host}:${port}:127.0.0.1`, `http://${host}:${port}/`],
      stdout: "piped",
      stderr: "null",
    }).output();
    return new TextDecoder().decode(output.stdout);
  };
  assertEquals(await get("www.example.test"), "web\n");
  assertEquals(await get("shop.apps.test"), "web\n", "a name under an allowed *.apps.test");
  assertEquals(await get("web.tunnel.test"), "web\n");
  assertEquals(await get("evil.example.test"), "no service is published at evil.example.test\n");

  // A reload that no longer allows a name withdraws the service that claimed it.
  await Deno.writeTextFile(
    config,
    (await Deno.readTextFile(config)).replace('"www.example.test", ', ""),
  );
  const from = agent.lines.length;
  Deno.kill(relay.pid, "SIGHUP");
  await agent.waitFor(
    /service web was refused by the relay: agent office may not claim host name www\.example\.test/,
    { from },
  );
  assertEquals(await get("www.example.test"), "no service is published at www.example.test\n");
  assertEquals(await get("web.tunnel.test"), "the service is offline\n");
});
