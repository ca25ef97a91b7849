/**
 * Several agents serving one service id (a group, `group = true` in the relay's config), as real
 * processes: clients spread across the members, a member killed or one whose service refuses is
 * passed over without a client seeing a failure, and a member whose health checks fail leaves
 * the rotation and returns.
 */

import { assert, assertEquals } from "./assert.ts";
import {
  adminOf,
  connect,
  eventually,
  freePort,
  type Proc,
  readAll,
  readExactly,
  startAgentProcess,
  startRelayProcess,
  startServer,
  tempConfigFile,
} from "./helpers.ts";
import { writeAll } from "../lib/net.ts";
import { parseMetrics } from "./metrics.ts";

/** An HTTP service answering `GET /` with its `name`, and `/healthz` with 200 or 503. */
function namedService(name: string, port = 0) {
  let healthy = true;
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, (request) => {
    if (new URL(request.url).pathname === "/healthz") {
      return new Response(healthy ? "ok" : "failing", { status: healthy ? 200 : 503 });
    }
    return new Response(name);
  });
  return {
    port: server.addr.port,
    setHealthy: (value: boolean) => healthy = value,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

/** Which member answered one fresh connection to the group's public `port`. */
async function whoServes(port: number): Promise<string> {
  const conn = await connect(port);
  await writeAll(conn, new TextEncoder().encode("GET / HTTP/1.0\r\nHost: group\r\n\r\n"));
  const response = new TextDecoder().decode(await readAll(conn));
  conn.close();
  assert(/^HTTP\/1\.[01] 200/.test(response), `a served answer, not: ${response}`);
  return response.slice(response.indexOf("\r\n\r\n") + 4);
}

/** How many of `count` fresh connections each member served. */
async function spread(port: number, count: number): Promise<Record<string, number>> {
  const served: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    const name = await whoServes(port);
    served[name] = (served[name] ?? 0) + 1;
  }
  return served;
}

/** The relay's `GET /healthz/SERVICE`: its status and text. */
async function serviceHealth(relay: Proc, service: string): Promise<[number, string]> {
  const response = await fetch(`http://${await adminOf(relay)}/healthz/${service}`);
  return [response.status, (await response.text()).trim()];
}

const GROUP_CONFIG = `
[services.web]
group = true
`;

/** A member of the group: an agent with its own id serving `web` from `port`. */
function member(
  relay: { port: number; trust: string[] },
  id: string,
  port: number,
  args: string[] = [],
) {
  return startAgentProcess(relay, { web: port }, ["--id", id, ...args]);
}

Deno.test("group: three agents share a service; one killed, the rest serve every client; back, it serves again", async () => {
  await using a = namedService("a");
  await using b = namedService("b");
  await using c = namedService("c");
  await using relay = await startRelayProcess(["--config", tempConfigFile(GROUP_CONFIG)]);
  await using agentA = await member(relay, "a", a.port);
  await using agentB = await member(relay, "b", b.port);
  await using agentC = await member(relay, "c", c.port);
  const port = agentA.publicPort.web;
  assertEquals([agentB.publicPort.web, agentC.publicPort.web], [port, port], "one public port");
  assertEquals(await spread(port, 30), { a: 10, b: 10, c: 10 }, "round robin");
  const admin = `http://${await adminOf(relay)}/`;
  const status = await (await fetch(`${admin}status`)).json();
  assertEquals(
    status.services.map((
      { id, agents }: { id: string; agents: { id: string; share: number }[] },
    ) => [id, agents.map((agent) => `${agent.id} ${agent.share}`)]),
    [["web", ["a 0.333", "b 0.333", "c 0.333"]]],
    "/status: who serves web, and each one's share",
  );
  const metrics = parseMetrics(await (await fetch(`${admin}metrics`)).text());
  for (const agent of ["a", "b", "c"]) {
    const labels = `{agent="${agent}",service="web"}`;
    assertEquals(metrics.get(`porthole_service_agent_connections_total${labels}`), 10);
    assertEquals(metrics.get(`porthole_service_agent_healthy${labels}`), 1);
  }

  Deno.kill(agentB.pid, "SIGKILL");
  await agentB.status;
  await relay.waitFor(/agent b(?: disconnected|: control channel ended)/);
  assertEquals(await spread(port, 20), { a: 10, c: 10 }, "every client served by a or c");

  await using _again = await member(relay, "b", b.port);
  const back = await spread(port, 30);
  assertEquals(back, { a: 10, b: 10, c: 10 }, "b is back in the rotation");
});

Deno.test("group: a member whose service refuses connections is passed over, its clients served by another", async () => {
  await using good = namedService("good");
  await using relay = await startRelayProcess(["--config", tempConfigFile(GROUP_CONFIG)]);
  await using agentGood = await member(relay, "good", good.port);
  const port = agentGood.publicPort.web;
  // The refusal comes back on a spare data channel, over the control channel after early data,
  // and over the control channel in the classic flow: each gets the client to the good member.
  for (const flow of [[], ["--spares", "0"], ["--spares", "0", "--early-data", "off"]]) {
    await using _bad = await member(relay, "bad", freePort(), flow);
    const retried = relay.lines.filter((line) => /trying agent good/.test(line)).length;
    assertEquals(await spread(port, 6), { good: 6 }, `no client failed (${flow.join(" ")})`);
    await eventually(
      () => relay.lines.filter((line) => /trying agent good/.test(line)).length > retried,
      `the relay gave a client of the bad member to the good one (${flow.join(" ")})`,
    );
  }
});

Deno.test("group: a member failing its HTTP health checks leaves the rotation, and returns when they pass", async () => {
  await using a = namedService("a");
  await using b = namedService("b");
  await using relay = await startRelayProcess(["--config", tempConfigFile(GROUP_CONFIG)]);
  const check = ["--health-check", "web=http:/healthz,interval=0.1,fall=2,rise=2"];
  await using agentA = await member(relay, "a", a.port, check);
  await using _agentB = await member(relay, "b", b.port);
  const port = agentA.publicPort.web;
  assertEquals(await spread(port, 4), { a: 2, b: 2 });

  a.setHealthy(false);
  await relay.waitFor(
    /agent a: service web fails its health checks \(GET \/healthz answered 503\)/,
  );
  assertEquals(await spread(port, 6), { b: 6 }, "only b while a fails");
  assertEquals(await serviceHealth(relay, "web"), [
    200,
    "service web: 1 of 2 agent(s) in rotation",
  ]);

  a.setHealthy(true);
  await relay.waitFor(/agent a: service web passes its health checks/);
  assertEquals(await spread(port, 4), { a: 2, b: 2 }, "a is back");
});

Deno.test("group: a lone member failing its TCP health check turns clients away as unhealthy", async () => {
  const servicePort = freePort();
  let service: Deno.TcpListener | undefined = Deno.listen({
    hostname: "127.0.0.1",
    port: servicePort,
  });
  await using relay = await startRelayProcess();
  await using agent = await startAgentProcess(relay, { web: servicePort }, [
    "--health-check",
    "web=tcp,interval=0.1,fall=1,rise=1",
  ]);
  try {
    service.close();
    service = undefined;
    await relay.waitFor(/service web fails its health checks/);
    const conn = await connect(agent.publicPort.web);
    assertEquals((await readAll(conn)).length, 0, "closed at once");
    conn.close();
    await relay.waitFor(/every agent serving it reports it failing its health checks/);
    assertEquals(await serviceHealth(relay, "web"), [
      503,
      "service web: its 1 agent(s) fail their health checks",
    ]);
    assertEquals(await serviceHealth(relay, "mail"), [
      503,
      "service mail: no agent serving it is attached to this relay",
    ]);
  } finally {
    service?.close();
  }
});

/** A service that greets each connection with `name` and holds it open until the client ends. */
function greetingService(name: string) {
  return startServer(async (conn) => {
    await writeAll(conn, new TextEncoder().encode(`${name}\n`));
    await readAll(conn);
  });
}

Deno.test("group: least connections sends new clients to the member with the fewest open", async () => {
  await using a = greetingService("a");
  await using b = greetingService("b");
  const config = GROUP_CONFIG + 'balance = "least-connections"\n';
  await using relay = await startRelayProcess(["--config", tempConfigFile(config)]);
  await using agentA = await member(relay, "a", a.port);
  await using _agentB = await member(relay, "b", b.port);
  const port = agentA.publicPort.web;
  /** Opens a connection held by its member; says which member it is. */
  const hold = async () => {
    const conn = await connect(port);
    return { conn, by: new TextDecoder().decode(await readExactly(conn, 2))[0] };
  };
  const held = [await hold(), await hold(), await hold(), await hold()];
  assertEquals(held.map(({ by }) => by).sort(), ["a", "a", "b", "b"]);
  for (const { conn } of held.filter(({ by }) => by === "b")) conn.close();
  const closedOfB = () =>
    relay.lines.filter((line) => /connection closed: .* agent=b /.test(line)).length;
  await eventually(() => closedOfB() === 2, "the relay has closed b's two");
  const next = [await hold(), await hold()];
  assertEquals(next.map(({ by }) => by), ["b", "b"], "both to b, which had none open");
  for (const { conn } of [...held.filter(({ by }) => by === "a"), ...next]) conn.close();
});
