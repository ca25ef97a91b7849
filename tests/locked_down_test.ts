/**
 * An agent in a network whose only way out is a proxy (tests/netns.ts builds it for real) reaches
 * its relay through real proxies: squid with Basic authentication that tunnels only to port 443,
 * microsocks (SOCKS5 with a password), and nginx passing WebSocket upgrades (an HTTP-only path).
 * Through each: curl, 64 MiB both ways checked by hash, half-close both ways, 200 connections at
 * once, and the proxy killed with SIGKILL and started again. Then the mistakes: a wrong proxy
 * password, a proxy that is down, a proxy refusing the relay's port.
 */

import { assertEquals, assertMatch } from "./assert.ts";
import { makeCa } from "./certs.ts";
import { echoed, Proc, randomBytes, readAll, sha256, tempStateDir } from "./helpers.ts";
import { lockedDownNetwork, type LockedNetwork, PROXY_PORTS, run } from "./netns.ts";
import {
  PROXY_USER,
  type ProxyDaemon,
  startMicrosocks,
  startReverseProxy,
  startSquid,
} from "./proxies.ts";
import { writeAll } from "../lib/net.ts";

/** The port the inside services start at (tests/inside_services.ts). */
const SERVICES_PORT = 3000;
const user = `${PROXY_USER.name}:${encodeURIComponent(PROXY_USER.password)}`;

/** An agent inside, with the three inside services; resolves once they are reachable. */
async function startInsideAgent(
  net: LockedNetwork,
  trust: string[],
  args: string[],
  env: Record<string, string> = {},
) {
  const agent = new Proc(
    "agent",
    [
      ...trust,
      ...["--id", `inside-${Math.random().toString(36).slice(2, 6)}`],
      ...["--service", `echo=127.0.0.1:${SERVICES_PORT}`],
      ...["--service", `first=127.0.0.1:${SERVICES_PORT + 1}`],
      ...["--service", `web=127.0.0.1:${SERVICES_PORT + 2}`],
      ...args,
    ],
    env,
    undefined,
    net.inNamespace(net.inside, []),
  );
  const ports: Record<string, number> = {};
  await agent.whileStarting(async () => {
    for (const id of ["echo", "first", "web"]) {
      const [, port] = await agent.waitFor(
        new RegExp(`service ${id} \\(.*\\) is reachable at .*:(\\d+)$`),
        { timeoutMs: 30_000 },
      );
      ports[id] = Number(port);
    }
  });
  return Object.assign(agent, { ports });
}

type InsideAgent = Awaited<ReturnType<typeof startInsideAgent>>;

async function connectTo(net: LockedNetwork, port: number): Promise<Deno.TcpConn> {
  return await Deno.connect({ hostname: net.publicAddress, port });
}

/** curl, from the internet, gets the inside's web service through the relay. */
async function curlsTheWeb(net: LockedNetwork, agent: InsideAgent): Promise<void> {
  const url = `http://${net.publicAddress}:${agent.ports.web}/`;
  assertEquals(await run(["curl", "-sS", "--max-time", "20", url]), "web inside\n");
}

/** What a user checks of a path: curl, a big transfer, half-close both ways, many at once. */
async function checkCarries(net: LockedNetwork, agent: InsideAgent, services: Proc) {
  await curlsTheWeb(net, agent);

  const big = randomBytes(64 << 20);
  assertEquals(
    sha256(await echoed(agent.ports.echo, big, net.publicAddress)),
    sha256(big),
    "64 MiB echoed whole",
  );

  // The service ends first: its words arrive with the end, and the client may still send.
  const conn = await connectTo(net, agent.ports.first);
  assertEquals(new TextDecoder().decode(await readAll(conn)), "first words\n");
  const from = services.lines.length;
  await writeAll(conn, new Uint8Array(100_000));
  await conn.closeWrite();
  await services.waitFor(/^received 100000 bytes$/, { from });
  conn.close();

  const many = await Promise.all(
    Array.from({ length: 200 }, async (_, i) => {
      const payload = new TextEncoder().encode(`connection ${i}`);
      return new TextDecoder().decode(
        await echoed(agent.ports.echo, payload, net.publicAddress),
      ) ===
        `connection ${i}`;
    }),
  );
  assertEquals(many.filter((ok) => !ok).length, 0, "200 concurrent connections echoed");
}

/** The proxy dies (SIGKILL): the agent says so, retries, and is back once the proxy is. */
async function checkRecovers(
  net: LockedNetwork,
  agent: InsideAgent,
  proxy: ProxyDaemon,
  unreachable = /cannot reach the proxy at .*: connection refused/,
) {
  const from = agent.lines.length;
  await proxy.kill();
  await agent.waitFor(/reconnecting in \d+ ms \(attempt 1\)/, { from });
  await agent.waitFor(unreachable, { from });
  const back = agent.lines.length;
  await proxy.restart();
  await agent.waitFor(/connected to the relay at /, { from: back, timeoutMs: 30_000 });
  await agent.waitFor(/service web .* is reachable at/, { from: back });
  await curlsTheWeb(net, agent);
}

Deno.test("locked-down network: out through squid, SOCKS5 and an HTTP-only reverse proxy", async (t) => {
  await using net = await lockedDownNetwork();
  const relayAt = `${net.relayAddress}:${PROXY_PORTS.https}`;
  await using relay = new Proc(
    "relay",
    [
      ...["--listen", `0.0.0.0:${PROXY_PORTS.https}`, "--port-range", "20000-20099"],
      ...["--state-dir", tempStateDir()],
    ],
    {},
    undefined,
    net.inNamespace(net.outside, []),
  );
  await relay.whileStarting(() => relay.waitFor(/listening for agents on /));
  const pin = ["--fingerprint", relay.output.match(/fingerprint \(SHA-256\): (\S+)/)![1]];
  await using services = new Proc(
    "agent",
    [String(SERVICES_PORT)],
    {},
    ["run", "-A", new URL("./inside_services.ts", import.meta.url).pathname],
    net.inNamespace(net.inside, []),
  );
  await services.whileStarting(() => services.waitFor(/^ready$/));

  await t.step("the relay cannot be reached directly from inside", async () => {
    const direct = net.inNamespace(net.inside, ["nc", "-z", "-w", "2", net.relayAddress, "443"]);
    assertEquals(await run(direct).then(() => "reached", () => "unreachable"), "unreachable");
  });

  await using squid = await startSquid(net, "443");
  const squidUrl = `http://${user}@${net.proxyAddress}:${PROXY_PORTS.squid}`;

  await t.step("HTTPS_PROXY: through squid, chosen after the direct path fails", async () => {
    await using agent = await startInsideAgent(net, pin, ["--relay", relayAt], {
      HTTPS_PROXY: squidUrl,
    });
    const chosen = await agent.waitFor(
      /using the path (.*) to the relay; better paths failed: (.*)$/,
    );
    const squidAt = `${net.proxyAddress}:${PROXY_PORTS.squid}`;
    assertEquals(chosen[1], `WebSocket over TLS, via HTTP proxy ${squidAt}`);
    assertMatch(chosen[2], /^TLS, direct: cannot reach the relay at .*: timed out$/);
    await checkCarries(net, agent, services);
  });

  await t.step("a WebSocket over TLS on 443 through a squid that tunnels only to 443", async () => {
    await using agent = await startInsideAgent(net, pin, [
      ...["--relay", `wss://${net.relayAddress}/porthole`, "--proxy", squidUrl],
    ]);
    await agent.waitFor(/\(WebSocket over TLS, via HTTP proxy [\d.:]+\) as agent/);
    await checkCarries(net, agent, services);
    await checkRecovers(net, agent, squid);
  });

  await t.step("mistakes: a wrong password, a proxy down, a port the proxy refuses", async () => {
    const wrong = `http://${PROXY_USER.name}:wrong@${net.proxyAddress}:${PROXY_PORTS.squid}`;
    const socksDown = `socks5://${user}@${net.proxyAddress}:${PROXY_PORTS.socks}`;
    const agents = [
      ["--relay", relayAt, "--proxy", wrong],
      ["--relay", relayAt, "--proxy", socksDown],
      ["--relay", `${net.relayAddress}:7835`, "--proxy", squidUrl],
    ].map((args) =>
      new Proc(
        "agent",
        [
          ...pin,
          "--service",
          "web=127.0.0.1:1",
          ...args,
        ],
        {},
        undefined,
        net.inNamespace(net.inside, []),
      )
    );
    try {
      const expected = [
        /the HTTP proxy at [\d.:]+ answered CONNECT [\d.:]+ with "HTTP\/1.1 407 Proxy Authentication Required": it refused the user name and password; check them in --proxy/,
        /cannot reach the proxy at [\d.:]+: connection refused: check --proxy/,
        /the HTTP proxy at [\d.:]+ answered CONNECT [\d.:]+:7835 with "HTTP\/1.1 403 Forbidden": it does not allow tunnels to port 7835/,
      ];
      await Promise.all(agents.map(async (agent, i) => {
        await agent.waitFor(expected[i], { timeoutMs: 30_000 });
        await agent.waitFor(/reconnecting in \d+ ms \(attempt 2\)/, { timeoutMs: 30_000 });
      }));
    } finally {
      await Promise.all(agents.map((agent) => agent.stop()));
    }
  });
  await squid[Symbol.asyncDispose]();

  await t.step("SOCKS5 with a user name and password (microsocks)", async () => {
    await using socks = await startMicrosocks(net);
    await using agent = await startInsideAgent(net, pin, [
      ...[
        "--relay",
        relayAt,
        "--proxy",
        `socks5://${user}@${net.proxyAddress}:${PROXY_PORTS.socks}`,
      ],
    ]);
    await agent.waitFor(/using the path WebSocket over TLS, via SOCKS5 proxy [\d.:]+ to the relay/);
    await checkCarries(net, agent, services);
    await checkRecovers(net, agent, socks);
  });

  await t.step(
    "HTTP only: a WebSocket through nginx as a reverse proxy, trusted with --ca",
    async () => {
      const certs = await makeCa(`IP:${net.proxyAddress}`);
      await using nginx = await startReverseProxy(net, certs, relayAt);
      await using agent = await startInsideAgent(net, ["--ca", `${certs}/ca.pem`], [
        ...["--relay", `wss://${net.proxyAddress}/porthole`],
      ]);
      await agent.waitFor(/\(WebSocket over TLS, direct\) as agent/);
      await checkCarries(net, agent, services);
      await checkRecovers(net, agent, nginx, /cannot reach the relay at .*: connection refused/);
    },
  );

  await t.step(
    "when the firewall opens, the agent moves from the proxy to the direct path",
    async () => {
      await using _squid = await startSquid(net, "443");
      const recheck = ["--relay", relayAt, "--path-recheck", "1"];
      await using agent = await startInsideAgent(net, pin, recheck, { HTTPS_PROXY: squidUrl });
      await agent.waitFor(/using the path WebSocket over TLS, via HTTP proxy/);
      const from = agent.lines.length;
      await net.openDirectPath();
      const moving = /the better path TLS, direct to the relay answers again; moving to it/;
      await agent.waitFor(moving, { from });
      await agent.waitFor(/connected to the relay at .* \(TLS, direct\) as agent/, { from });
      await agent.waitFor(/service web .* is reachable at/, { from });
      await curlsTheWeb(net, agent);
    },
  );
});
