/** Command-line values: addresses, service specs, ranges, durations; how the programs start. */

import { assert, assertEquals, assertThrows } from "./assert.ts";
import { parsePortRange, parseSeconds, parseServiceSpecs } from "../lib/cli.ts";
import { V8_FLAGS } from "../lib/launch.ts";
import { formatHostPort, parseHostPort } from "../lib/net.ts";

Deno.test("addresses: host names, IPv4 and bracketed IPv6, formatted back the same way", () => {
  for (
    const [text, hostname, port] of [
      ["relay.example.com:7835", "relay.example.com", 7835],
      ["127.0.0.1:0", "127.0.0.1", 0],
      ["[::1]:7835", "::1", 7835],
      ["[2001:db8::1]:443", "2001:db8::1", 443],
    ] as const
  ) {
    assertEquals(parseHostPort(text), { hostname, port });
    assertEquals(formatHostPort({ hostname, port }), text);
  }
  for (const bad of ["7835", "::1:7835", "host:", "host:65536", "host:-1", "[::1]", "a b:1"]) {
    assertThrows(() => parseHostPort(bad), /is not HOST:PORT/);
  }
});

Deno.test("service specs: ID=HOST:PORT, repeated, with clear errors", () => {
  assertEquals(
    parseServiceSpecs(["web=127.0.0.1:3000", "db=[::1]:5432"], "--service"),
    new Map([["web", { hostname: "127.0.0.1", port: 3000 }], ["db", {
      hostname: "::1",
      port: 5432,
    }]]),
  );
  assertThrows(() => parseServiceSpecs(["web"], "--service"), /is not ID=HOST:PORT/);
  assertThrows(() => parseServiceSpecs(["-x=h:1"], "--service"), /is not ID=HOST:PORT/);
  assertThrows(() => parseServiceSpecs(["web=nowhere"], "--service"), /--service: "nowhere"/);
  assertThrows(
    () => parseServiceSpecs(["web=h:1", "web=h:2"], "--expose"),
    /--expose names service web twice/,
  );
});

Deno.test("port ranges and durations", () => {
  assertEquals(parsePortRange("20000-20999"), { first: 20000, last: 20999 });
  for (const bad of ["20000", "2-1", "0-10", "1-70000", "a-b"]) {
    assertThrows(() => parsePortRange(bad), /is not FIRST-LAST/);
  }
  assertEquals(parseSeconds("0.5", "--connect-timeout"), 500);
  assertThrows(() => parseSeconds("0", "--connect-timeout"), /not a positive number/);
  assertThrows(() => parseSeconds("soon", "--connect-timeout"), /not a positive number/);
});

Deno.test("deno.json's tasks and the Makefile start relay and agent with lib/launch.ts's V8 flags", async () => {
  const flag = `--v8-flags=${V8_FLAGS}`;
  const read = (name: string) => Deno.readTextFile(new URL(`../${name}`, import.meta.url));
  const tasks: Record<string, string> = JSON.parse(await read("deno.json")).tasks;
  const uses = (text: string) => text.split(flag).length - 1;
  assertEquals(
    { relay: uses(tasks.relay), agent: uses(tasks.agent), build: uses(tasks.build) },
    { relay: 1, agent: 1, build: 2 },
    `deno.json's tasks should each carry ${flag}`,
  );
  const makefile = await read("Makefile");
  assert(makefile.includes(`\nV8_FLAGS := ${flag}\n`), `the Makefile's V8_FLAGS should be ${flag}`);
});
