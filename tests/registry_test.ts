/** The relay's registry and registration policy, in-process. */

import { assertEquals } from "./assert.ts";
import { EMPTY_CONFIG, parseRelayConfig } from "../lib/relay/config.ts";
import { registrationProblem } from "../lib/relay/policy.ts";
import { Registry } from "../lib/relay/registry.ts";

const RR = { balance: "round-robin" } as const;

Deno.test("registry: a service's first member, the same member again, and another agent refused", () => {
  const registry = new Registry<{ agentId: string }>();
  const office = { agentId: "office" };
  const lab = { agentId: "lab" };
  assertEquals(registry.add("web", office, false), { first: true });
  assertEquals(registry.add("web", office, false), { first: false });
  assertEquals(registry.add("web", lab, false), {
    reason: "service id web is already online from agent office; choose another id, stop the " +
      "other agent, or let agents serve it together with group = true under [services.web] in " +
      "the relay's config",
  });
  assertEquals(registry.pick("web", RR), office);
  assertEquals(registry.members("web").map(({ member }) => member), [office]);
  assertEquals(registry.size, 1);
  assertEquals(registry.remove("web", lab), false, "lab never served web");
  assertEquals(registry.remove("web", office), true, "office was the last member");
  assertEquals(registry.pick("web", RR), undefined);
  assertEquals(registry.members("web"), []);
  assertEquals(registry.add("web", lab, false), { first: true }, "the id is free again");
});

Deno.test("registry: a group spreads clients round robin, skips the unhealthy, the excluded and the paused", () => {
  const registry = new Registry<{ agentId: string }>();
  const [a, b, c] = ["a", "b", "c"].map((agentId) => ({ agentId }));
  assertEquals(registry.add("web", a, true), { first: true });
  assertEquals(registry.add("web", b, true), { first: false });
  assertEquals(registry.add("web", c, true), { first: false });
  const picks = (count: number, options = {}) =>
    Array.from({ length: count }, () => registry.pick("web", { ...RR, ...options })?.agentId);
  assertEquals(picks(6).sort(), ["a", "a", "b", "b", "c", "c"]);
  assertEquals(registry.setHealthy("web", b, false), true);
  assertEquals(registry.setHealthy("web", b, false), false, "no change");
  assertEquals(new Set(picks(4)), new Set(["a", "c"]));
  assertEquals(new Set(picks(4, { exclude: new Set([a]) })), new Set(["c"]));
  registry.pause("web", c, 60_000);
  assertEquals(new Set(picks(3)), new Set(["a"]), "c is paused while a can serve");
  assertEquals(
    picks(1, { exclude: new Set([a]) }),
    ["c"],
    "a paused member, when none else is left",
  );
  assertEquals(picks(1, { exclude: new Set([a, c]) }), [undefined], "b is unhealthy");
  registry.setHealthy("web", b, true);
  assertEquals(picks(1, { exclude: new Set([a, c]) }), ["b"], "b passes again");
  const served = Object.fromEntries(
    registry.members("web").map(({ member, served, healthy, paused }) => [
      member.agentId,
      { served, healthy, paused },
    ]),
  );
  assertEquals(served, {
    a: { served: 7, healthy: true, paused: false },
    b: { served: 3, healthy: true, paused: false },
    c: { served: 9, healthy: true, paused: true },
  });
  assertEquals(registry.remove("web", a), false, "b and c still serve it");
});

Deno.test("registry: least connections picks the member with the fewest open", () => {
  const registry = new Registry<{ agentId: string }>();
  const [a, b, c] = ["a", "b", "c"].map((agentId) => ({ agentId }));
  for (const member of [a, b, c]) registry.add("db", member, true);
  const open = new Map([[a, 5], [b, 1], [c, 3]]);
  const pick = () =>
    registry.pick("db", { balance: "least-connections", load: (member) => open.get(member)! })!;
  for (let i = 0; i < 6; i++) {
    const member = pick();
    open.set(member, open.get(member)! + 1);
  }
  assertEquals([...open.values()], [5, 5, 5], "each new one went to the least loaded");
});

Deno.test("policy: service ids and ports by the agent's entry, the port range, the service limit", async () => {
  const range = { first: 20000, last: 20999 };
  const none = { agentId: "office", services: new Set<string>() };
  const open = { config: EMPTY_CONFIG, pinned: new Map(), portRange: range };
  assertEquals(registrationProblem(open, none, "web", undefined), undefined);
  assertEquals(registrationProblem(open, none, "web", 20500), undefined);
  assertEquals(
    registrationProblem(open, none, "web", 8080),
    "agent office may not claim public port 8080 (outside --port-range)",
  );
  const pinned = { ...open, pinned: new Map([["web", { hostname: "0.0.0.0", port: 8080 }]]) };
  assertEquals(registrationProblem(pinned, none, "web", 8080), undefined, "the pin decides");

  const config = await parseRelayConfig(
    `
[agents.office]
secret = "correct-horse-battery-staple"
services = ["web", "db"]
ports = [8080]

[limits]
max_services_per_agent = 2
`,
    "relay.toml",
  );
  const listed = { config, pinned: new Map(), portRange: range };
  assertEquals(registrationProblem(listed, none, "web", 8080), undefined);
  assertEquals(
    registrationProblem(listed, none, "web", 20500),
    "agent office may not claim public port 20500 (see ports in its [agents] entry)",
  );
  assertEquals(
    registrationProblem(listed, none, "mail", undefined),
    "agent office may not serve mail (see services in its [agents] entry)",
  );
  const full = { agentId: "office", services: new Set(["web", "db"]) };
  assertEquals(registrationProblem(listed, full, "web", undefined), undefined, "already its own");
  const many = { agentId: "other", services: new Set(["a", "b"]) };
  const anyAgent = await parseRelayConfig("[limits]\nmax_services_per_agent = 2\n", "relay.toml");
  assertEquals(
    registrationProblem({ ...open, config: anyAgent }, many, "c", undefined),
    "agent other already serves 2 services (limits.max_services_per_agent)",
  );
});
