/** The relay's registry and registration policy, in-process. */

import { assertEquals } from "./assert.ts";
import { EMPTY_CONFIG, parseRelayConfig } from "../lib/relay/config.ts";
import { registrationProblem } from "../lib/relay/policy.ts";
import { Registry } from "../lib/relay/registry.ts";

Deno.test("registry: a service's first member, the same member again, and another agent refused", () => {
  const registry = new Registry<{ agentId: string }>();
  const office = { agentId: "office" };
  const lab = { agentId: "lab" };
  assertEquals(registry.add("web", office), { first: true });
  assertEquals(registry.add("web", office), { first: false });
  assertEquals(registry.add("web", lab), {
    reason: "service id web is already online from agent office; " +
      "choose another id or stop the other agent",
  });
  assertEquals(registry.pick("web"), office);
  assertEquals(registry.members("web"), [office]);
  assertEquals(registry.size, 1);
  assertEquals(registry.remove("web", lab), false, "lab never served web");
  assertEquals(registry.remove("web", office), true, "office was the last member");
  assertEquals(registry.pick("web"), undefined);
  assertEquals(registry.members("web"), []);
  assertEquals(registry.add("web", lab), { first: true }, "the id is free again");
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
