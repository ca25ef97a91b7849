/**
 * The proxy front end to end: SOCKS5 and HTTP CONNECT on one port, with real clients (curl,
 * OpenSSH through netcat's CONNECT), each refusal's reply code, and no way through to anything
 * that is not one of the relay's services.
 */

import { assertEquals, assertMatch } from "./assert.ts";
import { connect, readAll, readExactly, startAgentProcess, startRelayProcess } from "./helpers.ts";
import { SAYS_WEB, startNginx } from "./nginx.ts";
import { startSshd } from "./sshd.ts";
import { writeAll } from "../lib/net.ts";
import { SocksReply } from "../lib/socks5.ts";

/** A relay with the proxy front (and the HTTP front's domain), and the proxy's port. */
async function relayWithProxyFront() {
  const relay = await startRelayProcess(
    ["--proxy", "127.0.0.1:0", "--http", "127.0.0.1:0", "--domain", "tunnel.test"],
  );
  const [, port] = await relay.whileStarting(() =>
    relay.waitFor(/listening for SOCKS5 and HTTP CONNECT clients on .*:(\d+)$/)
  );
  return Object.assign(relay, { proxyPort: Number(port) });
}

async function run(
  command: string,
  args: string[],
): Promise<{ code: number; out: string; err: string }> {
  const output = await new Deno.Command(command, {
    args,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  })
    .output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, out: text(output.stdout), err: text(output.stderr) };
}

/** curl through the proxy front with HTTP CONNECT to `service`; returns what it says on stderr. */
async function curlConnect(proxyPort: number, service: string): Promise<string> {
  const proxy = `http://127.0.0.1:${proxyPort}`;
  return (await run("curl", ["-sS", "--proxy", proxy, "--proxytunnel", `http://${service}/`])).err;
}

/** A SOCKS5 CONNECT by hand; resolves with the reply code (and the connection, if it succeeded). */
async function socksConnect(port: number, host: string, target = 80) {
  const conn = await connect(port);
  await writeAll(conn, new Uint8Array([5, 1, 0]));
  assertEquals([...await readExactly(conn, 2)], [5, 0], "no authentication");
  const name = new TextEncoder().encode(host);
  const isIp = /^\d+\.\d+\.\d+\.\d+$/.test(host);
  const address = isIp ? [1, ...host.split(".").map(Number)] : [3, name.length, ...name];
  await writeAll(conn, new Uint8Array([5, 1, 0, ...address, target >> 8, target & 255]));
  const reply = await readExactly(conn, 10);
  return { code: reply[1], conn };
}

Deno.test("proxy front: curl over SOCKS5 and CONNECT, ssh through nc -X connect, by service name", async () => {
  await using nginx = await startNginx(SAYS_WEB);
  await using sshd = await startSshd();
  await using relay = await relayWithProxyFront();
  await using _agent = await startAgentProcess(relay, { web: nginx.port, shell: sshd.port });
  const proxy = `127.0.0.1:${relay.proxyPort}`;
  for (
    const args of [
      ["--socks5-hostname", proxy, "http://web/"],
      ["--socks5-hostname", proxy, "http://web.tunnel.test/"],
      ["--proxy", `http://${proxy}`, "--proxytunnel", "http://web/"],
    ]
  ) {
    const { code, out, err } = await run("curl", ["-sS", ...args]);
    assertEquals([code, out], [0, "web\n"], `curl ${args.join(" ")}: ${err}`);
  }
  const ssh = await run("ssh", [
    ...sshd.clientArgs,
    "-o",
    `ProxyCommand=nc -X connect -x ${proxy} %h %p`,
    "root@shell",
    "echo through the proxy front",
  ]);
  assertEquals([ssh.code, ssh.out], [0, "through the proxy front\n"], ssh.err);
});

Deno.test("proxy front: unknown, offline and unreachable services and IP targets get their codes", async () => {
  await using nginx = await startNginx(SAYS_WEB);
  await using relay = await relayWithProxyFront();
  const agent = await startAgentProcess(relay, { web: nginx.port, down: 1 });
  const { proxyPort } = relay;
  const expectCode = async (host: string, code: SocksReply, why: string) => {
    const reply = await socksConnect(proxyPort, host);
    assertEquals(reply.code, code, `${host}: ${why}`);
    assertEquals(await reply.conn.read(new Uint8Array(1)), null, "then closed");
    reply.conn.close();
  };
  try {
    const ok = await socksConnect(proxyPort, "web");
    assertEquals(ok.code, SocksReply.Succeeded);
    await writeAll(ok.conn, new TextEncoder().encode("GET / HTTP/1.0\r\nHost: web\r\n\r\n"));
    assertMatch(
      new TextDecoder().decode(await readAll(ok.conn)),
      /^HTTP\/1\.1 200 [^]*\r\n\r\nweb\n$/,
    );
    ok.conn.close();
    await expectCode("nothing", SocksReply.HostUnreachable, "no such service");
    await expectCode("10.0.0.1", SocksReply.NotAllowed, "never an open proxy");
    await expectCode("down", SocksReply.ConnectionRefused, "the agent cannot reach its service");
    // Logged once a minute per source: the first stranger's target is the one in the log.
    await relay.waitFor(/proxy client .* asked for nothing, which is no service of this relay/);
    assertMatch(await curlConnect(proxyPort, "nothing"), /CONNECT tunnel failed, response 404/);
  } finally {
    await agent.stop();
  }
  await relay.waitFor(/agent .*: (web, down|down, web) offline/);
  await expectCode("web", SocksReply.NetworkUnreachable, "its agent is gone");
  assertMatch(await curlConnect(proxyPort, "web"), /CONNECT tunnel failed, response 502/);
});
