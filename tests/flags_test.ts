/** Flag tables (lib/flags.ts): parseArgs options and --help from one table. */

import { assert, assertEquals, assertThrows } from "./assert.ts";
import {
  flagHelp,
  type FlagTable,
  HELP_LINE_WIDTH,
  parseFlags,
  parseOptions,
} from "../lib/flags.ts";

const TABLE = {
  listen: {
    value: "HOST:PORT",
    default: "0.0.0.0:7835",
    help: "Where agents dial.",
    example: "--listen [::]:7835",
  },
  expose: { value: "ID=HOST:PORT", repeats: true, help: "Pin a service (repeatable)." },
  "idle-timeout": { value: "SECS", defaultText: "off", help: "Close idle connections." },
  cert: { value: "FILE", help: "Certificate and key." },
  key: { value: "FILE" },
  "a-flag-with-a-long-name": { value: "VALUE", help: "First line.\nSecond line." },
  verbose: { short: "v", help: "Say more." },
} as const satisfies FlagTable;

Deno.test("flags: defaults, repeated values, switches and short aliases", () => {
  const none = parseFlags(TABLE, []);
  assertEquals({ ...none }, {
    listen: "0.0.0.0:7835",
    expose: [],
    verbose: false,
  });
  const flags = parseFlags(TABLE, [
    "--listen=127.0.0.1:0",
    "--expose",
    "a=h:1",
    "--expose",
    "b=h:2",
    "-v",
    "--idle-timeout",
    "5",
  ]);
  assertEquals(flags.listen, "127.0.0.1:0");
  assertEquals(flags.expose, ["a=h:1", "b=h:2"]);
  assertEquals(flags.verbose, true);
  // A default that is only described (`defaultText`) is not a value: the flag stays unset.
  assertEquals(flags["idle-timeout"], "5");
  assertEquals(none["idle-timeout"], undefined);
});

Deno.test("flags: parseArgs' own errors for unknown flags, missing values and positionals", () => {
  const code = (args: string[]) => {
    try {
      parseFlags(TABLE, args);
    } catch (error) {
      return (error as { code?: string }).code;
    }
  };
  assertEquals(code(["--frobnicate"]), "ERR_PARSE_ARGS_UNKNOWN_OPTION");
  assertEquals(code(["--listen"]), "ERR_PARSE_ARGS_INVALID_OPTION_VALUE");
  assertEquals(code(["--verbose=yes"]), "ERR_PARSE_ARGS_INVALID_OPTION_VALUE");
  assertEquals(code(["stray"]), "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL");
  assertThrows(() => parseFlags(TABLE, ["--verbose=yes"]), /does not take an argument/);
});

Deno.test("flags: the parseArgs options say only what the table says", () => {
  assertEquals(parseOptions(TABLE), {
    listen: { type: "string", default: "0.0.0.0:7835" },
    expose: { type: "string", multiple: true, default: [] },
    "idle-timeout": { type: "string" },
    cert: { type: "string" },
    key: { type: "string" },
    "a-flag-with-a-long-name": { type: "string" },
    verbose: { type: "boolean", default: false, short: "v" },
  });
});

Deno.test("flags: --help lists each flag with its help, default and example", () => {
  assertEquals(
    flagHelp(TABLE),
    [
      "  --listen HOST:PORT        Where agents dial. Default: 0.0.0.0:7835.",
      "                            Example: --listen [::]:7835",
      "  --expose ID=HOST:PORT     Pin a service (repeatable).",
      "  --idle-timeout SECS       Close idle connections. Default: off.",
      "  --cert FILE, --key FILE   Certificate and key.",
      "  --a-flag-with-a-long-name VALUE",
      "                            First line.",
      "                            Second line.",
      "  -v, --verbose             Say more.",
      "",
    ].join("\n"),
  );
});

Deno.test("flags: --help wraps long help at the line width, keeping default and example whole", () => {
  const help = flagHelp({
    wordy: {
      value: "N",
      default: "a default that is long enough not to fit after the words",
      help: "word ".repeat(30).trim(),
      example: "--wordy an-example-that-needs-a-line-of-its-own",
    },
  });
  const lines = help.trimEnd().split("\n");
  assert(lines.every((line) => line.length <= HELP_LINE_WIDTH), help);
  assertEquals(
    lines.at(-2)!.trim(),
    "Default: a default that is long enough not to fit after the words.",
  );
  assertEquals(
    lines.at(-1)!.trim(),
    "Example: --wordy an-example-that-needs-a-line-of-its-own",
  );
  assertEquals(lines.join(" ").split(/\s+/).filter((word) => word === "word").length, 30);
});
