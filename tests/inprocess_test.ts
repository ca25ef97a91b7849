/** Relay and agent started in-process from lib/, as a program embedding them would. */

import { assertEquals } from "./assert.ts";
import { echo, eventually, freePort, request, SECRET, startServer } from "./helpers.ts";
import { startAgent } from "../lib/agent/agent.ts";
import { startRelay } from "../lib/relay/relay.ts";
import { relayPaths } from "../lib/agent/relay_paths.ts";
import { plainTcp } from "../lib/transport/tcp.ts";

Deno.test("in-process: a relay and an agent from lib/ carry a connection and stop cleanly", async () => {
  await using service = startServer(echo);
  const publicPort = freePort();
  const relay = await startRelay({
    transport: plainTcp,
    listen: { hostname: "127.0.0.1", port: 0 },
    secret: SECRET,
    portRange: { first: publicPort, last: publicPort },
  });
  const agent = startAgent({
    relays: [{ name: "the relay", paths: relayPaths({ address: { relay: relay.address } }) }],
    secret: SECRET,
    id: "in-process",
    services: new Map([["echo", { target: { hostname: "127.0.0.1", port: service.port } }]]),
    shutdownTimeoutMs: 1_000,
  });
  try {
    await eventually(() => relay.stats().services === 1, "the agent's service is online");
    assertEquals(agent.stats().relay, "connected");
    const answer = await request(publicPort, new TextEncoder().encode("ping"));
    assertEquals(new TextDecoder().decode(answer), "ping");
    await eventually(
      () =>
        relay.stats().spares === 2 && relay.stats().connections === 1 + 2 &&
        agent.stats().spares === 2,
      "only the control channel and the two spare data channels an idle agent keeps are left",
    );
  } finally {
    agent.shutdown();
    await agent.done;
    await relay.shutdown(1_000);
  }
  assertEquals(agent.stats(), {
    relay: "disconnected",
    path: "plain TCP, direct",
    relays: [{ relay: "the relay", connected: false, path: "plain TCP, direct" }],
    connections: 0,
    spares: 0,
  });
  assertEquals(relay.stats().agents, 0);
});
