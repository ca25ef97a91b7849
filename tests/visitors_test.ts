/** Visitors of an HTTP service named in the relay's config (basic_auth), checked with curl. */

import bcrypt from "bcryptjs";
import { assertEquals, assertMatch } from "./assert.ts";
import { startAgentProcess, startRelayProcess, tempConfigFile } from "./helpers.ts";
import { SAYS_WEB, startNginx } from "./nginx.ts";

async function curl(args: string[]): Promise<{ code: number; out: string }> {
  const output = await new Deno.Command("curl", {
    args: ["-sS", ...args],
    stdout: "piped",
    stderr: "null",
  })
    .output();
  return { code: output.code, out: new TextDecoder().decode(output.stdout) };
}

Deno.test("basic auth: the right user and password get through on every front that can ask", async () => {
  const hash = bcrypt.hashSync("correct horse", 4); // a low cost: a test, not a vault
  const config = tempConfigFile(`[services.web]\nbasic_auth = ["alice:${hash}"]\n`);
  await using nginx = await startNginx(SAYS_WEB);
  await using relay = await startRelayProcess([
    "--config",
    config,
    "--http",
    "127.0.0.1:0",
    "--domain",
    "tunnel.test",
    "--proxy",
    "127.0.0.1:0",
  ]);
  const [, port] = await relay.waitFor(/listening for HTTP clients on .*:(\d+) /);
  const [, proxyPort] = await relay.waitFor(
    /listening for SOCKS5 and HTTP CONNECT clients on .*:(\d+)$/,
  );
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
  // Through the proxy front the credentials come by SOCKS5 (RFC 1929) or Proxy-Authorization.
  const proxy = `127.0.0.1:${proxyPort}`;
  const socks = (user: string) => curl(["--proxy", `socks5h://${user}@${proxy}`, "http://web/"]);
  assertEquals((await socks("alice:correct%20horse")).out, "web\n");
  assertEquals((await socks("alice:wrong")).code, 97, "curl: the SOCKS5 connection was refused");
  const connect = (user: string[]) =>
    curl([
      "--proxy",
      `http://${proxy}`,
      "--proxytunnel",
      ...user,
      "-w",
      "%{http_connect}",
      "http://web/",
    ]);
  assertEquals((await connect(["--proxy-user", "alice:correct horse"])).out, "web\n200");
  assertEquals((await connect([])).out, "407");
  // Its own public port cannot ask for a password, so it lets no one in.
  const direct = await curl([`http://127.0.0.1:${publicPort}/`]);
  assertEquals([direct.code === 0, direct.out], [false, ""]);
});
