/**
 * The relay's admin API (lib/admin/, lib/relay/report.ts): `/status` and `/metrics` against a
 * known agent, service, and transfer; `/healthz`; the token an address beyond loopback needs.
 */

import { assert, assertEquals, assertMatch } from "./assert.ts";
import {
  adminOf,
  connect,
  echo,
  eventually,
  Proc,
  randomBytes,
  readAll,
  readExactly,
  relayDialer,
  startAgentProcess,
  startRelayProcess,
  startServer,
  tempConfigFile,
  WAIT_MS,
} from "./helpers.ts";
import { writeAll } from "../lib/net.ts";
import { parseMetrics } from "./metrics.ts";
import { formatMetrics, Histogram } from "../lib/admin/metrics.ts";

Deno.test("admin API: /status and /metrics count the agent, its service and a transfer", async () => {
  await using service = startServer(echo);
  await using relay = await startRelayProcess(["--admin", "127.0.0.1:0"]);
  await using agent = await startAgentProcess(relay, { echo: service.port }, ["--id", "counted"]);
  const admin = `http://${await adminOf(relay)}`;
  const port = agent.publicPort.echo;

  const done = await connect(port);
  const payload = randomBytes(100_000);
  await writeAll(done, payload);
  await readExactly(done, payload.length);
  done.close();
  const open = await connect(port);
  await writeAll(open, new TextEncoder().encode("0123456789"));
  await readExactly(open, 10);

  const stranger = await relayDialer(relay).dial(WAIT_MS);
  await writeAll(stranger, new Uint8Array([0, 0, 0, 2, 0x7b, 0x7d])); // {}: no message at all
  // An error frame, then a clean end (with TLS close_notify): no abrupt-close error here.
  assertMatch(new TextDecoder().decode(await readAll(stranger)), /"type":"error"/);
  stranger.close();

  const health = await fetch(`${admin}/healthz`);
  assertEquals([health.status, await health.text()], [200, "ok\n"]);
  type Status = {
    agents: { id: string; services: string[] }[];
    services: { id: string; agents: { id: string }[]; addresses: string[] }[];
    connections: { service: string; agent: string; from_client: number; to_client: number }[];
  };
  let status: Status | undefined;
  await eventually(async () => {
    status = await (await fetch(`${admin}/status`)).json();
    return status!.connections.length === 1;
  }, "only the open connection is listed");
  assertEquals(status!.agents.map(({ id, services }) => ({ id, services })), [
    { id: "counted", services: ["echo"] },
  ]);
  assertEquals(status!.services.length, 1);
  assertEquals([status!.services[0].id, status!.services[0].agents.map(({ id }) => id)], [
    "echo",
    ["counted"],
  ]);
  assertMatch(status!.services[0].addresses[0], new RegExp(`:${port}$`));
  const [live] = status!.connections;
  assertEquals([live.service, live.agent, live.from_client, live.to_client], [
    "echo",
    "counted",
    10,
    10,
  ]);

  const response = await fetch(`${admin}/metrics`);
  assertMatch(response.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
  const metrics = parseMetrics(await response.text());
  assertEquals(metrics.get("porthole_agents"), 1);
  assertEquals(metrics.get("porthole_services"), 1);
  assertEquals(metrics.get('porthole_connections_active{service="echo"}'), 1);
  assertEquals(metrics.get('porthole_connections_total{service="echo"}'), 2);
  assertEquals(metrics.get('porthole_bytes_total{direction="in",service="echo"}'), 100_010);
  assertEquals(metrics.get('porthole_bytes_total{direction="out",service="echo"}'), 100_010);
  assertEquals(metrics.get("porthole_connection_setup_seconds_count"), 2);
  assertEquals(metrics.get('porthole_failed_handshakes_total{reason="protocol"}'), 1);
  assertEquals(metrics.get('porthole_connection_setup_seconds_bucket{le="+Inf"}'), 2);
  assert(metrics.get("process_resident_memory_bytes")! > 1_000_000, "the relay's memory");

  const printed = new Proc("relay", ["status", "--admin", admin.slice("http://".length)]);
  assertEquals((await printed.status).code, 0, printed.output);
  assertMatch(printed.output, /^AGENT +FROM +CONNECTED +SERVICES$/m);
  assertMatch(printed.output, /^counted +127\.0\.0\.1:\d+ +\d+s +echo$/m);
  assertMatch(printed.output, new RegExp(`^echo +tcp +counted +.*:${port}$`, "m"));
  assertMatch(printed.output, /^echo +127\.0\.0\.1:\d+ +counted +10 B +10 B +\d+s$/m);
  open.close();

  const gone = new Proc("relay", ["status", "--admin", "127.0.0.1:9"]);
  assertEquals((await gone.status).code, 1);
  assertMatch(gone.output, /cannot reach the admin API at http:\/\/127\.0\.0\.1:9\/status/);
});

Deno.test("admin API: beyond loopback it needs a token, compared on every request", async () => {
  const noToken = new Proc("relay", [
    "--listen",
    "127.0.0.1:0",
    "--insecure",
    "--admin",
    "0.0.0.0:0",
  ]);
  assertEquals((await noToken.status).code, 2, "refused to start without a token");
  assertMatch(noToken.lines.join("\n"), /reachable beyond this machine: give it a token/);

  const token = tempConfigFile("s3cret-admin-token\n");
  await using relay = await startRelayProcess([
    ...["--admin", "0.0.0.0:0", "--admin-token-file", token],
  ]);
  const port = (await adminOf(relay)).split(":").pop();
  const url = `http://127.0.0.1:${port}/status`;
  const withAuth = (value?: string) =>
    fetch(url, value ? { headers: { authorization: value } } : {}).then(async (answer) => {
      await answer.body?.cancel();
      return answer.status;
    });
  assertEquals(await withAuth(), 401, "no token");
  assertEquals(await withAuth("Bearer wrong-token"), 401, "a wrong token");
  assertEquals(await withAuth("Bearer s3cret-admin-token"), 200, "the token");
});

Deno.test("metrics text: labels escaped, histogram buckets cumulative, every family typed", () => {
  const histogram = new Histogram([0.01, 0.1]);
  [0.005, 0.05, 0.05, 3].forEach((seconds) => histogram.observe(seconds));
  const text = formatMetrics([
    {
      name: "t_bytes_total",
      help: "Bytes.\nTwo lines.",
      type: "counter",
      samples: [{ labels: { service: 'a"b\\c' }, value: 5 }],
    },
    { name: "t_setup_seconds", help: "Set-up.", type: "histogram", samples: histogram.samples() },
  ]);
  assertMatch(text, /^# HELP t_bytes_total Bytes\.\\nTwo lines\.$/m);
  assertMatch(text, /^t_bytes_total\{service="a\\"b\\\\c"\} 5$/m);
  const metrics = parseMetrics(text);
  assertEquals(metrics.get('t_setup_seconds_bucket{le="0.01"}'), 1);
  assertEquals(metrics.get('t_setup_seconds_bucket{le="0.1"}'), 3);
  assertEquals(metrics.get('t_setup_seconds_bucket{le="+Inf"}'), 4);
  assertEquals(metrics.get("t_setup_seconds_count"), 4);
  assertEquals(metrics.get("t_setup_seconds_sum"), 3.105);
});

Deno.test("admin API of the agent: its relay, its services with their public addresses, its connections", async () => {
  await using service = startServer(echo);
  await using relay = await startRelayProcess();
  await using agent = await startAgentProcess(relay, { echo: service.port, down: 9 }, [
    "--id",
    "reporting",
  ]);
  const admin = `http://${await adminOf(agent)}`;
  const conn = await connect(agent.publicPort.echo);
  await writeAll(conn, new TextEncoder().encode("hello"));
  await readExactly(conn, 5);
  type Status = {
    agent: { id: string; relay: string; path: string };
    services: { id: string; target: string; online: boolean; addresses: string[] }[];
    connections: { service: string; from_client: number; to_client: number }[];
  };
  let status: Status | undefined;
  await eventually(async () => {
    status = await (await fetch(`${admin}/status`)).json();
    return status!.connections.length === 1;
  }, "the agent lists the connection");
  assertEquals([status!.agent.id, status!.agent.relay, status!.agent.path], [
    "reporting",
    "connected",
    "TLS, direct",
  ]);
  const echoService = status!.services.find((entry) => entry.id === "echo")!;
  assertEquals([echoService.target, echoService.online], [`127.0.0.1:${service.port}`, true]);
  assertMatch(echoService.addresses[0], new RegExp(`:${agent.publicPort.echo}$`));
  assertEquals(
    status!.connections.map((
      { service, from_client, to_client },
    ) => [service, from_client, to_client]),
    [["echo", 5, 5]],
  );
  const metrics = parseMetrics(await (await fetch(`${admin}/metrics`)).text());
  assertEquals(metrics.get(`porthole_relay_connected{relay="127.0.0.1:${relay.port}"}`), 1);
  assertEquals(metrics.get("porthole_services_online"), 2);
  assertEquals(metrics.get('porthole_connections_active{service="echo"}'), 1);
  assertEquals(metrics.get('porthole_bytes_total{direction="in",service="echo"}'), 5);
  conn.close();
});
