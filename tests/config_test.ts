/** The relay's configuration file, access rules and log throttling, in-process. */

import { assert, assertEquals, assertRejects } from "./assert.ts";
import { secretKey } from "../lib/auth.ts";
import { AccessControl } from "../lib/relay/access.ts";
import { DEFAULT_LIMITS, parseRelayConfig } from "../lib/relay/config.ts";
import { LogThrottle } from "../lib/throttle.ts";

Deno.test("config: agents with secrets or their hashes, services, ports, rules and limits", async () => {
  const config = await parseRelayConfig(
    `
[agents.office]
secret = "correct-horse-battery-staple"
services = ["web", "db"]
ports = [8080, "20000-20010"]

[agents.lab]
secret_sha256 = "${"ab".repeat(32)}"
services = ["*"]

[services.web]
allow = ["10.0.0.0/8", "2001:db8::/32"]
deny = ["10.6.6.6/32"]
max_connections = 100
max_connections_per_client = 5
max_new_per_second_per_client = 2

[limits]
handshake_timeout = 2.5
max_unauthenticated = 10
max_spares_per_agent = 0
`,
    "relay.toml",
  );
  const office = config.agents!.get("office")!;
  assertEquals(office.key, secretKey("correct-horse-battery-staple"));
  assertEquals(office.services, new Set(["web", "db"]));
  assertEquals(office.ports, [{ first: 8080, last: 8080 }, { first: 20000, last: 20010 }]);
  assertEquals(config.agents!.get("lab")!.services, undefined);
  assertEquals(config.agents!.get("lab")!.key.length, 32);
  const web = config.services.get("web")!;
  assertEquals([web.allow.length, web.deny.length, web.maxConnections], [2, 1, 100]);
  assertEquals(config.limits, {
    ...DEFAULT_LIMITS,
    handshakeTimeoutMs: 2500,
    maxUnauthenticated: 10,
    maxSparesPerAgent: 0,
  });
  assertEquals((await parseRelayConfig("", "empty.toml")).agents, undefined);
});

Deno.test("config: every mistake names the file, the key and what is expected", async () => {
  const cases: [string, RegExp][] = [
    ["[agents.a]\nservices = []", /relay.toml: agents.a needs exactly one of secret/],
    ['[agents.a]\nsecret = "short"', /agents.a.secret must be a string of at least 16/],
    ['[agents.a]\nsecret_sha256 = "xyz"', /agents.a.secret_sha256 must be 64 hex digits/],
    ['[agents.a]\nsecret = "0123456789abcdef"\nports = ["9-1"]', /agents.a.ports has "9-1"/],
    [
      '[agents.a]\nsecret = "0123456789abcdef"\nservice = ["web"]',
      /agents.a.service is not a known setting/,
    ],
    ['[services.web]\nallow = ["10.0.0.0/33"]', /services.web.allow has "10.0.0.0\/33"/],
    [
      "[services.web]\nmax_connections = 0",
      /services.web.max_connections must be a positive whole number/,
    ],
    [
      '[services.web]\nbasic_auth = ["alice:secret"]',
      /services.web.basic_auth has "alice:…", which is not user:bcrypt-hash \(htpasswd -nbB\)/,
    ],
    ['[services.web]\ngroup = "yes"', /services.web.group must be true .* or false/],
    [
      '[services.web]\ngroup = true\nbalance = "random"',
      /services.web.balance must be one of "round-robin", "least-connections"/,
    ],
    ['[services.web]\nbalance = "round-robin"', /services.web.balance needs group = true/],
    ["[limits]\nhandshake_timeout = -1", /limits.handshake_timeout must be a positive number/],
    ["[limits]\nmax_spares_per_agent = -1", /limits.max_spares_per_agent must be a positive/],
    ["[limit]", /the file.limit is not a known setting/],
    ["x = ", /relay.toml: Invalid TOML/],
  ];
  for (const [text, pattern] of cases) {
    await assertRejects(parseRelayConfig(text, "relay.toml"), pattern);
  }
});

const rules = async (text: string) => (await parseRelayConfig(text, "test.toml")).services;

Deno.test("groups: group = true lets agents share a service, round robin unless balance says", async () => {
  const access = new AccessControl(
    await rules(`
[services.web]
group = true
[services.db]
group = true
balance = "least-connections"
[services.mail]
group = false
`),
  );
  assertEquals(access.groupOf("web"), { balance: "round-robin" });
  assertEquals(access.groupOf("db"), { balance: "least-connections" });
  assertEquals(access.groupOf("mail"), undefined);
  assertEquals(access.groupOf("other"), undefined, "one agent per service by default");
});

Deno.test("access: deny wins over allow; IPv4-mapped IPv6 addresses count as IPv4", async () => {
  const access = new AccessControl(
    await rules(`
[services.web]
allow = ["10.0.0.0/8", "2001:db8::/32"]
deny = ["10.6.6.6/32"]
`),
  );
  assert(access.admit("web", "10.1.2.3").admitted);
  assert(access.admit("web", "::ffff:10.1.2.3").admitted);
  assert(access.admit("web", "2001:db8::1").admitted);
  assertEquals(access.admit("web", "10.6.6.6"), {
    admitted: false,
    reason: "its address is denied",
  });
  assertEquals(access.admit("web", "192.0.2.1"), {
    admitted: false,
    reason: "its address is not in the allowed ranges",
  });
  assert(access.admit("other", "192.0.2.1").admitted, "services without rules are open");
});

Deno.test("access: connection caps per service and per client are released when clients go", async () => {
  const access = new AccessControl(
    await rules(`
[services."*"]
max_connections = 3
max_connections_per_client = 2
`),
  );
  const a1 = access.admit("web", "192.0.2.1");
  const a2 = access.admit("web", "192.0.2.1");
  assert(a1.admitted && a2.admitted);
  assertEquals(access.admit("web", "192.0.2.1").admitted, false);
  const b1 = access.admit("web", "192.0.2.2");
  assert(b1.admitted);
  const full = access.admit("web", "192.0.2.3");
  assert(!full.admitted && /maximum of 3 connections/.test(full.reason));
  a1.release();
  a1.release(); // releasing twice counts once
  assert(access.admit("web", "192.0.2.1").admitted);
  assertEquals(access.admit("web", "192.0.2.4").admitted, false);
});

Deno.test("access: new connections per second per client", async () => {
  const access = new AccessControl(
    await rules("[services.web]\nmax_new_per_second_per_client = 5"),
  );
  const verdicts = Array.from({ length: 8 }, () => access.admit("web", "192.0.2.1").admitted);
  assertEquals(verdicts.filter(Boolean).length, 5);
  assert(access.admit("web", "192.0.2.2").admitted, "another address has its own budget");
});

Deno.test("log throttle: one line per key per interval, then a count of what was held back", async () => {
  const throttle = new LogThrottle(50);
  const lines: string[] = [];
  for (let i = 0; i < 10; i++) throttle.pass("a", (note) => lines.push(`a${note}`));
  throttle.pass("b", (note) => lines.push(`b${note}`));
  assertEquals(lines, ["a", "b"]);
  await new Promise((resolve) => setTimeout(resolve, 60)); // the interval itself is under test
  throttle.pass("a", (note) => lines.push(`a${note}`));
  assertEquals(lines[2], "a (and 9 more since the last report)");
});
