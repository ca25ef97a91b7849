/**
 * A real HAProxy in front of two relays, with the PROXY protocol on, configured by the example in
 * docs/scaling.md (its addresses made loopback ones, its checks faster): the relays trust HAProxy's
 * header, so the service behind the agent (nginx, reading the agent's header) sees the real
 * client's address; round robin sends clients through each relay; one relay killed -9, HAProxy's
 * checks take it out of the rotation and the next connections are all served through the other.
 */

import { assert, assertEquals } from "./assert.ts";
import {
  eventually,
  freePort,
  type Proc,
  startAgentProcess,
  startRelayProcess,
  tempStateDir,
} from "./helpers.ts";
import { startHAProxy } from "./haproxy.ts";
import { startNginx } from "./nginx.ts";

const CLIENT = "127.0.0.7"; // a loopback address of the client's own, not HAProxy's

/** The `haproxy` block of docs/scaling.md with each of `replaced`'s keys (which must be there) replaced. */
async function documentedConfig(replaced: Record<string, string>): Promise<string> {
  const doc = await Deno.readTextFile(new URL("../docs/scaling.md", import.meta.url));
  let config = doc.match(/^```haproxy\n([^]*?)^```$/m)?.[1] ?? "";
  for (const [from, to] of Object.entries(replaced)) {
    assert(config.includes(from), `docs/scaling.md's HAProxy example should have ${from}`);
    config = config.replaceAll(from, to);
  }
  return config;
}

/** GET / through HAProxy with curl from {@link CLIENT}; returns the body (the address nginx saw). */
async function get(port: number): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command("curl", {
    args: ["-sS", "--max-time", "10", "--interface", CLIENT, `http://127.0.0.1:${port}/`],
    stdin: "null",
  }).output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  assertEquals(code, 0, `curl: ${text(stderr)}`);
  return text(stdout);
}

/** How many connections from {@link CLIENT} `relay` has logged as closed. */
const served = (relay: Proc) =>
  relay.lines.filter((line) => /connection closed: .* client=127\.0\.0\.7:/.test(line)).length;

Deno.test("HAProxy in front of two relays: the real client reaches the service; one relay killed, the next connections are served", async () => {
  await using nginx = await startNginx(
    'listen 127.0.0.1:PORT proxy_protocol; location / { return 200 "$proxy_protocol_addr"; }',
  );
  const stateDir = tempStateDir(); // one certificate for both, so one --fingerprint trusts both
  const web = { a: freePort(), b: freePort() };
  const relayArgs = (port: number) => [
    "--state-dir",
    stateDir,
    "--expose",
    `web=127.0.0.1:${port}`,
    "--proxy-protocol-from",
    "127.0.0.1/32", // HAProxy's address
  ];
  const relayA = await startRelayProcess(relayArgs(web.a));
  try {
    await using relayB = await startRelayProcess(relayArgs(web.b));
    await using agent = await startAgentProcess(relayA, { web: nginx.port }, [
      "--relay",
      `127.0.0.1:${relayA.port}`,
      "--relay",
      `127.0.0.1:${relayB.port}`,
      "--proxy-protocol",
      "web=v2",
      "--reconnect-max",
      "1",
    ]);
    for (const port of [web.a, web.b]) {
      await agent.waitFor(
        new RegExp(`service web \\(.*\\) is reachable at 127\\.0\\.0\\.1:${port}$`),
      );
    }
    const port = freePort();
    const config = await documentedConfig({
      "bind :443": `bind 127.0.0.1:${port}`,
      "192.0.2.10:8443": `127.0.0.1:${web.a}`,
      "192.0.2.11:8443": `127.0.0.1:${web.b}`,
      "inter 2s": "inter 200ms",
    });
    await using haproxy = await startHAProxy(config, port);
    const states = async () => Object.values(await haproxy.servers()).join();
    await eventually(async () => (await states()) === "UP,UP", "HAProxy's checks pass");

    for (let i = 0; i < 4; i++) assertEquals(await get(port), CLIENT, `request ${i}`);
    await eventually(() => served(relayA) + served(relayB) === 4, "both relays log 4 connections");
    assertEquals([served(relayA), served(relayB)], [2, 2], "round robin: two through each relay");

    Deno.kill(relayA.pid, "SIGKILL");
    await relayA.status;
    await eventually(
      async () => (await states()) === "DOWN,UP",
      "HAProxy's checks mark relay A down",
    );
    for (let i = 0; i < 5; i++) {
      assertEquals(await get(port), CLIENT, `after the kill: ${i}`);
    }
    await eventually(() => served(relayB) === 7, "relay B logs the 5 new connections");
  } finally {
    await relayA.stop();
  }
});
