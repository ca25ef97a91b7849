/**
 * The HTTPS front end to end: TLS routed by server name, terminated with the operator's
 * certificate for an HTTP service (nginx) or passed through to a service with its own TLS
 * (openssl s_server), checked with curl and openssl s_client.
 */

import { assert, assertEquals, assertMatch } from "./assert.ts";
import {
  connect,
  eventually,
  freePort,
  Proc,
  startAgentProcess,
  startDaemon,
  startRelayProcess,
  startServer,
  tempStateDir,
} from "./helpers.ts";
import { selfSigned } from "./certs.ts";
import { SAYS_WEB, startNginx } from "./nginx.ts";
import { writeAll } from "../lib/net.ts";
import { splice } from "../lib/splice.ts";

const DOMAIN = "tunnel.test";

async function run(command: string, args: string[], stdin?: string) {
  const child = new Deno.Command(command, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const output = await child.output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, out: text(output.stdout), err: text(output.stderr) };
}

/** A self-signed certificate for `name` (of organisation `org`) in `dir`: `<file>.pem`, `.key`. */
function certificateFor(dir: string, file: string, name: string, org = "porthole test") {
  return selfSigned(dir, file, `/O=${org}/CN=${name}`, `DNS:${name}`);
}

/** `openssl s_client` to the front on `port`, with `args`; what it prints. */
function sClient(port: number, ...args: string[]) {
  return run("openssl", ["s_client", "-connect", `127.0.0.1:${port}`, ...args], "");
}

/** `openssl s_server -www` with its own certificate: a TLS service the relay must not touch. */
async function startTlsService(dir: string) {
  const port = freePort();
  const args = ["s_server", "-accept", `127.0.0.1:${port}`, "-www", "-quiet"];
  const certificate = ["-cert", `${dir}/api.pem`, "-key", `${dir}/api.key`];
  return { port, ...await startDaemon("openssl", [...args, ...certificate], port) };
}

Deno.test("HTTPS front: terminated for an HTTP service, passed through for a TLS one, by SNI", async () => {
  const dir = tempStateDir();
  await certificateFor(dir, "wildcard", `*.${DOMAIN}`);
  await certificateFor(dir, "api", `api.${DOMAIN}`);
  await using nginx = await startNginx(SAYS_WEB);
  await using api = await startTlsService(dir);
  await using relay = await startRelayProcess([
    "--https",
    "127.0.0.1:0",
    "--https-cert",
    `${dir}/wildcard.pem`,
    "--https-key",
    `${dir}/wildcard.key`,
    "--domain",
    DOMAIN,
  ]);
  const [, port] = await relay.waitFor(/listening for HTTPS clients on .*:(\d+) /);
  const httpsPort = Number(port);
  await using agent = await startAgentProcess(relay, {}, [
    "--service",
    `web=http://127.0.0.1:${nginx.port}`,
    "--service",
    `api=tls://127.0.0.1:${api.port}`,
  ]);
  for (const service of ["web", "api"]) {
    await agent.waitFor(
      new RegExp(`service ${service} is also reachable at https://${service}\\.`),
    );
  }
  const curl = (service: string, ca: string, through = httpsPort) =>
    run("curl", [
      "-sS",
      "--cacert",
      `${dir}/${ca}.pem`,
      "--resolve",
      `${service}.${DOMAIN}:${through}:127.0.0.1`,
      `https://${service}.${DOMAIN}:${through}/`,
    ]);
  const web = await curl("web", "wildcard");
  assertEquals(
    [web.code, web.out],
    [0, "web\n"],
    `terminated with the operator's certificate: ${web.err}`,
  );
  const passed = await curl("api", "api");
  assertEquals(passed.code, 0, `the service's own certificate reached curl: ${passed.err}`);
  assertMatch(passed.out, /s_server/);
  const wrongTrust = await curl("api", "wildcard");
  assert(wrongTrust.code !== 0, "the relay's certificate is not what a passthrough client sees");

  const shown = await sClient(httpsPort, "-servername", `web.${DOMAIN}`);
  assertMatch(shown.out, new RegExp(`subject=.*CN ?= ?\\*\\.${DOMAIN.replace(".", "\\.")}`));
  const noName = await sClient(httpsPort, "-noservername");
  assertMatch(
    noName.out + noName.err,
    /no peer certificate available/,
    "no SNI: closed, no certificate",
  );

  const outside = await sClient(httpsPort, "-servername", "other.example");
  assertMatch(
    outside.out + outside.err,
    /no peer certificate available/,
    "a name outside the domain",
  );

  // SIGHUP: the certificate files are read again, and new connections get the new one.
  await certificateFor(dir, "wildcard", `*.${DOMAIN}`, "renewed");
  const from = relay.lines.length;
  Deno.kill(relay.pid, "SIGHUP");
  await relay.waitFor(/SIGHUP: HTTPS certificates read again/, { from });
  await eventually(async () => {
    const renewed = await sClient(httpsPort, "-servername", `web.${DOMAIN}`);
    return /O ?= ?renewed/.test(renewed.out);
  }, "the renewed certificate is served");
  assert(
    !relay.lines.slice(from).some((line) => line.includes("keeping the previous")),
    relay.output,
  );

  // A ClientHello cut into 1-byte segments on its way still routes.
  await using trickle = startServer(async (client) => {
    const front = await connect(httpsPort);
    front.setNoDelay(true);
    const first = new Uint8Array(600);
    const count = await client.read(first);
    for (const byte of first.subarray(0, count ?? 0)) await writeAll(front, new Uint8Array([byte]));
    await splice(client, front);
  });
  const trickled = await curl("web", "wildcard", trickle.port);
  assertEquals([trickled.code, trickled.out], [0, "web\n"], trickled.err);
});

Deno.test("HTTPS front: flags that do not go together are refused at start (exit 2)", async () => {
  for (
    const [args, message] of [
      [
        ["--https", "127.0.0.1:0", "--domain", DOMAIN],
        /--https goes with --https-cert and --https-key/,
      ],
      [[
        "--https-cert",
        "a.pem",
        "--https-key",
        "a.key",
        "--https-key",
        "b.key",
        "--https",
        "127.0.0.1:0",
        "--domain",
        DOMAIN,
      ], /one key for each certificate/],
      [["--http", "127.0.0.1:0"], /--http needs --domain/],
    ] as const
  ) {
    const relay = new Proc("relay", ["--listen", "127.0.0.1:0", "--insecure", ...args]);
    const { code } = await relay.status;
    assertEquals(code, 2, relay.output);
    assertMatch(relay.output, message);
  }
});

Deno.test("HTTPS front: agents share its port by the relay's own name, over TLS or WebSocket", async () => {
  const dir = tempStateDir();
  await certificateFor(dir, "wildcard", `*.${DOMAIN}`);
  await using nginx = await startNginx(SAYS_WEB);
  await using relay = await startRelayProcess([
    ...["--https", "127.0.0.1:0", "--domain", DOMAIN, "--https-agents", "localhost"],
    ...["--https-cert", `${dir}/wildcard.pem`, "--https-key", `${dir}/wildcard.key`],
  ]);
  const [, port] = await relay.waitFor(/listening for HTTPS clients on .*:(\d+) /);
  for (const relayAt of [`wss://localhost:${port}/porthole`, `tls://localhost:${port}`]) {
    const id = relayAt.split(":")[0];
    const from = relay.lines.length;
    await using agent = await startAgentProcess(relay, {}, [
      ...["--relay", relayAt, "--id", id, "--service", `web=http://127.0.0.1:${nginx.port}`],
    ]);
    await agent.waitFor(/service web is also reachable at https:\/\/web\./);
    const [, agentFrom] = await relay.waitFor(new RegExp(`agent ${id} connected from (\\S+)`), {
      from,
    });
    const web = await run("curl", [
      ...["-sS", "--cacert", `${dir}/wildcard.pem`],
      ...["--resolve", `web.${DOMAIN}:${port}:127.0.0.1`, `https://web.${DOMAIN}:${port}/`],
    ]);
    assertEquals([web.code, web.out], [0, "web\n"], `browsers still get the web: ${web.err}`);
    const toFront = await run("ss", ["-tnH", "state", "established", "dst", `127.0.0.1:${port}`]);
    const agentEnds = toFront.out.split("\n").map((line) => line.trim().split(/\s+/)[2]);
    assert(
      agentEnds.includes(agentFrom),
      `the agent's own address is logged, not the loopback hop's: ${agentFrom} in ${agentEnds}`,
    );
  }
});
