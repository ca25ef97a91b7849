/**
 * Values of the relay's configuration file that take more than a type check: port lists and
 * ranges, visitors' credentials, and groups of agents.
 */

import { type PortRange, portRangeOf } from "../address.ts";
import type { Balance } from "./registry.ts";

/** `basic_auth` entries, `user:bcrypt-hash` as `htpasswd -nbB user password` prints them. */
export function parseVisitors(
  entries: string[],
  key: string,
  fail: (key: string, problem: string) => never,
): Map<string, string> {
  const visitors = new Map<string, string>();
  for (const entry of entries) {
    const match = /^([^:]+):(\$2[aby]\$\d\d\$[./A-Za-z0-9]{53})$/.exec(entry);
    if (!match) {
      fail(key, `has "${entry.split(":")[0]}:…", which is not user:bcrypt-hash (htpasswd -nbB)`);
    }
    visitors.set(match![1], match![2]);
  }
  return visitors;
}

/** `ports` entries: ports and `"FIRST-LAST"` ranges. */
export function parsePorts(
  value: unknown,
  key: string,
  fail: (key: string, problem: string) => never,
): PortRange[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    fail(key, 'must be a list of ports and ranges, e.g. [8080, "20000-20010"]');
  }
  return (value as unknown[]).map((item) => {
    const range = typeof item === "number" || typeof item === "string"
      ? portRangeOf(String(item))
      : undefined;
    return range ?? fail(
      key,
      `has ${JSON.stringify(item)}, which is not a port (1-65535) or a range "FIRST-LAST"`,
    );
  });
}

/** `group` and `balance` of a `[services.ID]` table: undefined when agents may not share it. */
export function parseGroup(
  group: unknown,
  balance: unknown,
  key: string,
  fail: (key: string, problem: string) => never,
): { balance: Balance } | undefined {
  if (group !== undefined && typeof group !== "boolean") {
    fail(`${key}.group`, "must be true (several agents may serve it) or false");
  }
  if (balance !== undefined && !BALANCES.includes(balance as Balance)) {
    fail(`${key}.balance`, `must be one of ${BALANCES.map((name) => `"${name}"`).join(", ")}`);
  }
  if (!group) {
    if (balance !== undefined) fail(`${key}.balance`, "needs group = true");
    return undefined;
  }
  return { balance: (balance as Balance | undefined) ?? "round-robin" };
}

const BALANCES: readonly Balance[] = ["round-robin", "least-connections"];
