/** Command-line values: addresses, service specs, ranges, durations; how the programs start. */

import { assert, assertEquals, assertThrows } from "./assert.ts";
import { AGENT_FLAGS, AGENT_HELP } from "../lib/agent_flags.ts";
import {
  applyLogFormat,
  applyLogLevel,
  parseAddress,
  parseOnOff,
  parsePortRange,
  parseSeconds,
  parseSecondsOrOff,
  parseServiceSpecs,
  parseSpares,
  parseWebSocketPath,
} from "../lib/cli.ts";
import { type Flag, type FlagTable, HELP_LINE_WIDTH } from "../lib/flags.ts";
import { V8_FLAGS } from "../lib/launch.ts";
import { setLogLevel } from "../lib/log.ts";
import { RELAY_FLAGS, RELAY_HELP } from "../lib/relay_flags.ts";
import { formatHostPort, parseHostPort } from "../lib/address.ts";

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

const PROGRAMS = [
  { name: "relay", flags: RELAY_FLAGS as FlagTable, help: RELAY_HELP },
  { name: "agent", flags: AGENT_FLAGS as FlagTable, help: AGENT_HELP },
];

Deno.test("--help of relay and agent names every flag, within the line width", () => {
  for (const { name, flags, help } of PROGRAMS) {
    for (const [flag, { short }] of Object.entries(flags)) {
      assert(new RegExp(`--${flag}\\b(?!-)`).test(help), `${name} --help should name --${flag}`);
      if (short) assert(help.includes(`-${short}, --${flag}`), `${name} --help: -${short}`);
    }
    const long = help.split("\n").filter((line) => line.length > HELP_LINE_WIDTH);
    assertEquals(long, [], `${name} --help has lines over ${HELP_LINE_WIDTH} characters`);
  }
});

Deno.test("the flag tables' defaults are values their flags accept", () => {
  const check: Record<string, (text: string, flag: string) => unknown> = {
    "HOST:PORT": parseAddress,
    "FIRST-LAST": parsePortRange,
    SECS: parseSeconds,
    "SECS|off": parseSecondsOrOff,
    LEVEL: applyLogLevel,
    "text|json": applyLogFormat,
    PATH: parseWebSocketPath,
    "MIN-MAX": parseSpares,
    "on|off": parseOnOff,
  };
  for (const { name, flags } of PROGRAMS) {
    for (const [flag, spec] of Object.entries(flags) as [string, Flag][]) {
      assert(spec.default === undefined || spec.defaultText === undefined, `--${flag}`);
      assert(spec.value !== undefined || spec.default === undefined, `switch --${flag}`);
      assert(!spec.repeats || spec.default === undefined, `repeated --${flag}`);
      if (spec.default === undefined) continue;
      const parse = check[spec.value!];
      assert(parse, `${name}: no check for the default of --${flag} ${spec.value}`);
      parse(spec.default, `--${flag}`);
    }
  }
  setLogLevel("info");
});

/** The README's table under "## Flags" / "### {program}": flag cell → default cell, per flag. */
function readmeFlags(
  readme: string,
  program: string,
): Map<string, { cell: string; default: string }> {
  const section = readme.split("\n## Flags\n")[1].split("\n## ")[0];
  const table = section.split(`\n### ${program}\n`)[1].split("\n### ")[0];
  const rows = table.split("\n").filter((line) => line.startsWith("|")).slice(2);
  const flags = new Map<string, { cell: string; default: string }>();
  for (const row of rows) {
    const [cell, shown] = row.split(/(?<!\\)\|/).slice(1, 3)
      .map((text) => text.trim().replaceAll("\\|", "|"));
    for (const [, name] of cell.matchAll(/--([a-z][a-z-]*)/g)) {
      flags.set(name, { cell, default: shown.replaceAll("`", "") });
    }
  }
  return flags;
}

Deno.test("README's flag tables list every flag with its placeholder and default", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  for (const { name, flags } of PROGRAMS) {
    const listed = readmeFlags(readme, name);
    assertEquals(
      [...listed.keys()].sort(),
      Object.keys(flags).sort(),
      `README's "### ${name}" table should list exactly ${name}'s flags`,
    );
    for (const [flag, spec] of Object.entries(flags) as [string, Flag][]) {
      const row = listed.get(flag)!;
      if (spec.value !== undefined) {
        assert(row.cell.includes(`\`--${flag} ${spec.value}\``), `README: --${flag} ${spec.value}`);
      }
      // Only literal defaults are compared: the described ones (`defaultText`, e.g. "off") are
      // worded for the help column and may be put differently in the README.
      if (spec.default !== undefined) {
        assertEquals(row.default, spec.default, `README: the default of ${name} --${flag}`);
      }
    }
  }
});
