/**
 * Command-line flags as tables. A program lists each flag once, with its value placeholder, its
 * default and its help; both the `node:util` parseArgs options and the flag section of --help
 * come from that table, so a default is written in one place. This is the one module that uses
 * `node:util` parseArgs (a stand-in for @std/cli, not reachable here).
 *
 * @example
 * ```ts
 * const FLAGS = {
 *   listen: { value: "HOST:PORT", default: "0.0.0.0:7835", help: "Where agents dial." },
 *   expose: { value: "ID=HOST:PORT", repeats: true, help: "Pin a service (repeatable)." },
 *   verbose: { short: "v", help: "Say more." },
 * } as const satisfies FlagTable;
 * const flags = parseFlags(FLAGS, ["-v", "--expose", "web=0.0.0.0:8080"]);
 * const listen: string = flags.listen; // "0.0.0.0:7835"
 * const exposed: string[] = flags.expose; // ["web=0.0.0.0:8080"]
 * const verbose: boolean = flags.verbose; // true
 * console.log(flagHelp(FLAGS)); // "  --listen HOST:PORT        Where agents dial. Default: ..."
 * ```
 */

import { parseArgs } from "node:util";

/** One flag of a {@link FlagTable}: how it is parsed and how --help describes it. */
export interface Flag {
  /** Placeholder for its value, e.g. "SECS"; without one the flag is a switch (default false). */
  readonly value?: string;
  /** One-letter alias: "h" makes `-h` mean the same as the flag. */
  readonly short?: string;
  /** May be given more than once; the values are collected in order (none: `[]`). */
  readonly repeats?: boolean;
  /** The value it has when not given; --help shows it as "Default: …". */
  readonly default?: string;
  /**
   * What not giving the flag means, where that is no value to parse (e.g. "off", "the host
   * name"): --help shows it as "Default: …", parsing leaves the flag undefined.
   */
  readonly defaultText?: string;
  /**
   * What it does, in sentences, wrapped to the help column; a newline starts a new line. Left out,
   * the flag is described together with the one before it (`--cert FILE, --key FILE`).
   */
  readonly help?: string;
  /** A sample use, shown as "Example: …" after the default. */
  readonly example?: string;
}

/** A program's flags by long name (without the dashes), in the order --help lists them. */
export type FlagTable = Readonly<Record<string, Flag>>;

/** The parsed value of flag `F`: a switch's boolean, or its string(s). */
export type FlagValue<F extends Flag> = F extends { readonly value: string }
  ? F extends { readonly repeats: true } ? string[]
  : F extends { readonly default: string } ? string
  : string | undefined
  : boolean;

/** The parsed values of a table's flags, by long name. */
export type FlagValues<T extends FlagTable> = { -readonly [K in keyof T]: FlagValue<T[K]> };

/** A `node:util` parseArgs option. */
interface ParseOption {
  type: "string" | "boolean";
  short?: string;
  multiple?: boolean;
  default?: string | boolean | string[];
}

/** The `node:util` parseArgs options for a table. */
export function parseOptions(table: FlagTable): Record<string, ParseOption> {
  const options: Record<string, ParseOption> = {};
  for (const [name, flag] of Object.entries(table)) {
    const option: ParseOption = flag.value === undefined
      ? { type: "boolean", default: false }
      : flag.repeats
      ? { type: "string", multiple: true, default: [] }
      : { type: "string" };
    if (flag.default !== undefined) option.default = flag.default;
    if (flag.short !== undefined) option.short = flag.short;
    options[name] = option;
  }
  return options;
}

/**
 * Parses `args` by `table`. An unknown flag, a missing value or a positional argument throws
 * parseArgs' error (its `code` starts with `ERR_PARSE_ARGS`).
 */
export function parseFlags<T extends FlagTable>(table: T, args: string[]): FlagValues<T> {
  return parseArgs({ args, options: parseOptions(table) }).values as FlagValues<T>;
}

/** Where the help text of a flag starts, counted from the start of the line. */
export const HELP_TEXT_COLUMN = 28;
/** Longest line of the flag section of --help. */
export const HELP_LINE_WIDTH = 94;

/** How --help names a flag: `-h, --help`, `--listen HOST:PORT`. */
export function flagLabel(name: string, flag: Flag): string {
  const short = flag.short === undefined ? "" : `-${flag.short}, `;
  return `${short}--${name}${flag.value === undefined ? "" : ` ${flag.value}`}`;
}

/** The "Default: …" sentence of a flag, if it has a default. */
export function defaultSentence(flag: Flag): string | undefined {
  const shown = flag.default ?? flag.defaultText;
  return shown === undefined ? undefined : `Default: ${shown}.`;
}

/**
 * The flag section of --help: one entry per flag in table order, its label in the first column
 * (on a line of its own when too long) and its help, default and example wrapped beside it. Every
 * line ends with a newline.
 */
export function flagHelp(table: FlagTable): string {
  const entries: { labels: string[]; flag: Flag }[] = [];
  for (const [name, flag] of Object.entries(table)) {
    const label = flagLabel(name, flag);
    if (flag.help === undefined && entries.length > 0) entries.at(-1)!.labels.push(label);
    else entries.push({ labels: [label], flag });
  }
  const indent = " ".repeat(HELP_TEXT_COLUMN);
  let out = "";
  for (const { labels, flag } of entries) {
    const label = `  ${labels.join(", ")}`;
    const lines = helpLines(flag, HELP_LINE_WIDTH - HELP_TEXT_COLUMN);
    if (label.length > HELP_TEXT_COLUMN - 2) out += `${label}\n`;
    else out += `${label.padEnd(HELP_TEXT_COLUMN)}${lines.shift()}\n`;
    for (const line of lines) out += `${indent}${line}\n`;
  }
  return out;
}

/**
 * A flag's help, then its default and its example, wrapped to `width`. The default and the
 * example are never broken; the example stands two spaces after what precedes it.
 */
function helpLines(flag: Flag, width: number): string[] {
  const paragraphs = (flag.help ?? "").split("\n").map((text) =>
    text.split(" ").filter(Boolean).map((word) => ({ word, gap: " " }))
  );
  const last = paragraphs.at(-1)!;
  const sentence = defaultSentence(flag);
  if (sentence) last.push({ word: sentence, gap: " " });
  if (flag.example !== undefined) last.push({ word: `Example: ${flag.example}`, gap: "  " });
  const lines: string[] = [];
  for (const words of paragraphs) {
    let line = "";
    for (const { word, gap } of words) {
      if (line && line.length + gap.length + word.length > width) {
        lines.push(line);
        line = word;
      } else line = line ? line + gap + word : word;
    }
    lines.push(line);
  }
  return lines;
}
