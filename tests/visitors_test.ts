/** Visitors of an HTTP service named in the relay's config (basic_auth), checked with curl. */

import bcrypt from "bcryptjs";
import { assertEquals, assertMatch } from "./assert.ts";
import { startAgentProcess, startRelayProcess, tempConfigFile } from "./helpers.ts";
import { startNginx } from "./nginx.ts";

async function curl(args: string[]): Promise<{ code: number; out: string }> {
  const output = await new Deno.Command("curl", {
    args: ["-sS", ...args],
    stdout: "piped",
    stderr: "null",
  })
    .output();
  return { code: output.code, out: new TextDecoder().decode(output.stdout) };
}

Deno.test("basic auth: the right user and password get through, a wrong or missing one gets 401", async () => {
  const hash = bcrypt.hashSync("correct horse", 4); // a low cost: a test, not a vault
  const config = tempConfigFile(`[services.web]\nbasic_auth = ["alice:${hash}"]\n`);
  await using nginx = await startNginx(
    `listen 127.0.0.1:PORT; location / { return 200 "web\\n"; }`,
  );
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
    "--service",
    `web=http://127.0.0.1:${nginx.port}`,
  ]);
  await agent.waitFor(/service web is also reachable at http:/);
  const [, publicPort] = await agent.waitFor(/service web \(.*\) is reachable at .*:(\d+)$/);
  const url = `http://web.tunnel.test:${port}/`;
  const resolve = ["--resolve", `web.tunnel.test:${port}:127.0.0.1`];
  assertEquals((await curl([...resolve, "-u", "alice:correct horse", url])).out, "web\n");
  assertEquals(
    (await curl([...resolve, "-u", "alice:correct horse", url])).out,
    "web\n",
    "again, remembered",
  );
  const status = (auth: string[]) =>
    curl([...resolve, ...auth, "-o", "/dev/null", "-w", "%{http_code}", url]);
  assertEquals((await status(["-u", "alice:wrong"])).out, "401");
  assertEquals((await status(["-u", "mallory:correct horse"])).out, "401");
  const missing = await curl([...resolve, "-i", url]);
  assertMatch(missing.out, /^HTTP\/1\.1 401 [^]*WWW-Authenticate: Basic realm="web"/);
  // Its own public port cannot ask for a password, so it lets no one in.
  const direct = await curl([`http://127.0.0.1:${publicPort}/`]);
  assertEquals([direct.code === 0, direct.out], [false, ""]);
});
