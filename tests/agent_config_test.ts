/**
 * The agent's configuration file (lib/agent/config_file.ts): every flag as a key, the services
 * as tables, a bad key and bad values refused naming the file and the key, the command line
 * winning, the examples in examples/, and a real agent started from a file.
 */

import { assertEquals, assertMatch } from "./assert.ts";
import { echo, Proc, request, startRelayProcess, startServer, tempConfigFile } from "./helpers.ts";
import { configArgs } from "../lib/agent/config_file.ts";
import { AGENT_FLAGS } from "../lib/agent_flags.ts";
import {
  applyHostNames,
  applyProxyProtocol,
  parseAgentServices,
} from "../lib/agent/service_flags.ts";
import { type Flag, parseFlags } from "../lib/flags.ts";
import { loadRelayConfig } from "../lib/relay/config.ts";

/** A value each kind of flag takes, by its placeholder. */
const SAMPLES: Record<string, string | number> = {
  FILE: "/etc/porthole/file",
  ADDRESS: "relay.example.com:7835",
  URL: "http://proxy.internal:3128",
  SHA256: "AB:CD",
  NAME: "office",
  SECS: 7,
  "SECS|off": "off",
  "MIN-MAX": "1-3",
  "on|off": "off",
  "HOST:PORT": "127.0.0.1:17837",
  LEVEL: "debug",
  "text|json": "json",
  "ID=CHECK": "web=tcp,interval=5",
};

/** The agent's flags parsed from `file`'s text and the command line `args`. */
async function parsed(text: string, args: string[] = []) {
  const fromFile = await configArgs(tempConfigFile(text), AGENT_FLAGS, args);
  return parseFlags(AGENT_FLAGS, [...fromFile, ...args]);
}

Deno.test("agent config: every flag as a key, and services as tables", async () => {
  const lines: string[] = [];
  const expected: Record<string, unknown> = {};
  for (const [flag, spec] of Object.entries(AGENT_FLAGS) as [string, Flag][]) {
    if (["config", "help", "version", "service", "host", "proxy-protocol"].includes(flag)) continue;
    const key = flag.replaceAll("-", "_");
    if (spec.value === undefined) {
      lines.push(`${key} = true`);
      expected[flag] = true;
      continue;
    }
    const sample = SAMPLES[spec.value];
    assertEquals(typeof sample !== "undefined", true, `no sample for ${spec.value} (--${flag})`);
    lines.push(`${key} = ${JSON.stringify(sample)}`);
    expected[flag] = spec.repeats ? [String(sample)] : String(sample);
  }
  lines.push(
    "[services.web]",
    'target = "127.0.0.1:3000"',
    'kind = "http"',
    'hosts = ["www.example.com", "example.com"]',
    "[services.ssh]",
    'target = "127.0.0.1:22"',
    "port = 2222",
    'proxy_protocol = "v2"',
  );
  const flags = await parsed(lines.join("\n") + "\n");
  for (const [flag, value] of Object.entries(expected)) {
    assertEquals(flags[flag as keyof typeof flags], value, `--${flag}`);
  }
  const services = parseAgentServices(flags.service);
  applyHostNames(services, flags.host);
  applyProxyProtocol(services, flags["proxy-protocol"]);
  assertEquals(Object.fromEntries(services), {
    web: {
      target: { hostname: "127.0.0.1", port: 3000 },
      kind: "http",
      port: undefined,
      hosts: ["www.example.com", "example.com"],
    },
    ssh: { target: { hostname: "127.0.0.1", port: 22 }, kind: "tcp", port: 2222, proxyProtocol: 2 },
  });
});

Deno.test("agent config: a bad key or value is refused naming the file and the key", async () => {
  const cases: [string, RegExp][] = [
    ['relays = "a:1"\n', /: the file\.relays is not a known setting \(known: relay, .*services\)/],
    ["insecure = 1\n", /: insecure must be true or false/],
    ["spares = [1]\n", /: spares must be a string or a number/],
    ["service = 3\n", /: service must be a list of strings/],
    ['[services.web]\ntarget = "127.0.0.1:1"\nkind = "ftp"\n', /: services\.web\.kind must be tcp/],
    ['[services.web]\ntarget = "a:1"\ncolour = "red"\n', /: services\.web\.colour is not a known/],
    ["[services.web]\nport = 80\n", /: services\.web\.target must be HOST:PORT/],
    ["relay = \n", /: /],
  ];
  for (const [text, pattern] of cases) {
    const file = tempConfigFile(text);
    const message = await configArgs(file, AGENT_FLAGS, []).then(
      () => "accepted",
      (error: Error) => error.message,
    );
    assertMatch(message, new RegExp(`^${file}`), `the file comes first: ${message}`);
    assertMatch(message, pattern, text);
  }
});

Deno.test("agent config: the command line wins, its services replacing the file's", async () => {
  const text = 'relay = "a.example:1"\nspares = 0\n[services.web]\ntarget = "127.0.0.1:1"\n';
  const fromFile = await parsed(text);
  assertEquals([fromFile.relay, fromFile.spares, fromFile.service], [
    ["a.example:1"],
    "0",
    ["web=127.0.0.1:1"],
  ]);
  const overridden = await parsed(text, ["--relay", "b.example:2", "--service=db=127.0.0.1:5432"]);
  assertEquals([overridden.relay, overridden.spares, overridden.service], [
    ["b.example:2"],
    "0",
    ["db=127.0.0.1:5432"],
  ]);
});

Deno.test("examples: agent.toml and relay.toml parse", async () => {
  const example = (name: string) => new URL(`../examples/${name}`, import.meta.url).pathname;
  const flags = parseFlags(
    AGENT_FLAGS,
    await configArgs(example("agent.toml"), AGENT_FLAGS, []),
  );
  assertEquals(flags.relay, ["relay.example.com:7835"]);
  assertEquals([...parseAgentServices(flags.service).keys()], ["web", "ssh"]);
  const relay = await loadRelayConfig(example("relay.toml"));
  assertEquals([...relay.agents!.keys()], ["office", "lab"]);
});

Deno.test("agent config: a real agent started from its file serves its service", async () => {
  await using service = startServer(echo);
  await using relay = await startRelayProcess();
  const file = tempConfigFile(
    [
      `relay = "127.0.0.1:${relay.port}"`,
      `fingerprint = "${relay.fingerprint}"`,
      'id = "from-file"',
      'admin = "off"',
      "[services.echo]",
      `target = "127.0.0.1:${service.port}"`,
    ].join("\n") + "\n",
  );
  await using agent = new Proc("agent", ["--config", file]);
  const [, port] = await agent.waitFor(/service echo \(.*\) is reachable at .*:(\d+)$/);
  await relay.waitFor(/agent from-file connected/);
  const answer = await request(Number(port), new TextEncoder().encode("from the file"));
  assertEquals(new TextDecoder().decode(answer), "from the file");
});

Deno.test("agent config: a bad value from the file is refused naming the file and the key", async () => {
  const cases = [
    { top: 'spares = "lots"', expected: /: spares: --spares "lots" is not MIN-MAX/ },
    { top: 'early_data = "maybe"', expected: /: early_data: --early-data "maybe" is neither on/ },
    {
      service: 'health_check = "ping"',
      expected: /: services: --health-check web=…: health check "ping": it starts with tcp/,
    },
  ];
  for (const { top = "", service = "", expected } of cases) {
    const file = tempConfigFile(
      `relay = "127.0.0.1:1"\n${top}\n[services.web]\ntarget = "127.0.0.1:1"\n${service}\n`,
    );
    await using agent = new Proc("agent", ["--config", file]);
    assertEquals((await agent.status).code, 2, "a usage error");
    assertMatch(agent.output, new RegExp(file.replaceAll(".", "\\.") + expected.source));
  }
});
