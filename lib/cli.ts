/**
 * What the two entry scripts share: the flags both have, flag values turned into typed settings,
 * the version, and the way a command ends (a one-line error and a distinct exit code, never a
 * stack trace).
 */

import config from "../deno.json" with { type: "json" };
import { SHUTDOWN_TIMEOUT_MS } from "./drain.ts";
import type { FlagTable } from "./flags.ts";
import {
  LOG_FORMATS,
  LOG_LEVELS,
  type Logger,
  type LogLevel,
  parseLogLevel,
  setLogFormat,
  setLogLevel,
} from "./log.ts";
import { type HostPort, parseHostPort, type PortRange, portRangeOf } from "./address.ts";

/** porthole's version, from deno.json. */
export const VERSION: string = config.version;

/** Exit code for a bad command line or configuration. */
export const EXIT_USAGE = 2;
/** Exit code when the relay refuses the agent (wrong secret, incompatible version). */
export const EXIT_REFUSED = 3;

/** What a service id may look like: it appears in logs, flags and (later) host names. */
export const SERVICE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/**
 * The flags relay and agent share with the same meaning and help, last in each one's table.
 * (`--secret-file` and `--insecure` are on both too, but each program says what they mean for it.)
 */
export const COMMON_FLAGS = {
  "idle-timeout": {
    value: "SECS",
    defaultText: "off",
    help: "Close a client connection when no byte has moved either way for this long.",
  },
  "shutdown-timeout": {
    value: "SECS",
    default: String(SHUTDOWN_TIMEOUT_MS / 1000),
    help: "On SIGINT/SIGTERM, how long open connections get to finish before they are closed; " +
      "a second signal stops at once.",
  },
  "log-level": {
    value: "LEVEL",
    default: "info",
    help: `${LOG_LEVELS.slice(0, -1).join(", ")} or ${LOG_LEVELS.at(-1)}. Logs go to stderr.`,
  },
  "log-format": {
    value: "text|json",
    default: "text",
    help: "text: one readable line per event; json: one JSON object per line (time, level, " +
      "component, message, and the message's key=value pairs as fields), for log shippers.",
  },
  help: { short: "h", help: "Show this help." },
  version: { short: "V", help: "Print the version." },
} as const satisfies FlagTable;

/** An error in the command line: printed with a pointer to --help, exit {@link EXIT_USAGE}. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Reads the file a flag names; a failure is a {@link UsageError} naming the flag. */
export async function readFlagFile(path: string, flag: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    throw new UsageError(`${flag}: cannot read ${path}: ${(error as Error).message}`);
  }
}

/** Parses `ID=HOST:PORT` as given to `--service` or `--expose`. */
export function parseServiceSpec(text: string, flag: string): [string, HostPort] {
  const at = text.indexOf("=");
  const id = text.slice(0, at);
  if (at < 0 || !SERVICE_ID_PATTERN.test(id)) {
    throw new UsageError(
      `${flag} "${text}" is not ID=HOST:PORT with an id of letters, digits, '.', '_' or '-' ` +
        `(example: ${flag} web=127.0.0.1:3000)`,
    );
  }
  return [id, parseAddress(text.slice(at + 1), flag)];
}

/** Collects repeated `ID=HOST:PORT` flags into a map, refusing an id given twice. */
export function parseServiceSpecs(texts: string[], flag: string): Map<string, HostPort> {
  const specs = new Map<string, HostPort>();
  for (const text of texts) {
    const [id, address] = parseServiceSpec(text, flag);
    if (specs.has(id)) throw new UsageError(`${flag} names service ${id} twice`);
    specs.set(id, address);
  }
  return specs;
}

/** Parses a HOST:PORT flag value, naming the flag in the error. */
export function parseAddress(text: string, flag: string): HostPort {
  try {
    return parseHostPort(text);
  } catch (error) {
    throw new UsageError(`${flag}: ${(error as Error).message}`);
  }
}

/** Parses an `on|off` flag's value. */
export function parseOnOff(text: string, flag: string): boolean {
  if (text === "on" || text === "off") return text === "on";
  throw new UsageError(`${flag} "${text}" is neither on nor off`);
}

/** Parses `--spares MIN-MAX` (or one number for both; 0 for none). */
export function parseSpares(text: string): { min: number; max: number } {
  const match = /^(\d+)(?:-(\d+))?$/.exec(text);
  const min = Number(match?.[1]), max = Number(match?.[2] ?? match?.[1]);
  if (!match || min > max || max > 64) {
    throw new UsageError(`--spares "${text}" is not MIN-MAX (0 to 64, e.g. 2-8), or 0 for none`);
  }
  return { min, max };
}

/** Checks `--websocket-path`: an absolute path, without query. */
export function parseWebSocketPath(path: string): string {
  if (!/^\/[^\s?#]*$/.test(path)) {
    throw new UsageError(
      `--websocket-path "${path}" must start with / (and hold no ?, # or spaces)`,
    );
  }
  return path;
}

/** Parses `FIRST-LAST` as given to `--port-range`. */
export function parsePortRange(text: string): PortRange {
  const range = text.includes("-") ? portRangeOf(text) : undefined;
  if (!range) {
    throw new UsageError(
      `--port-range "${text}" is not FIRST-LAST within 1-65535 (example: 20000-20999)`,
    );
  }
  return range;
}

/** Parses a positive number of seconds into milliseconds. */
export function parseSeconds(text: string, flag: string): number {
  const seconds = Number(text);
  if (!(seconds > 0)) throw new UsageError(`${flag} "${text}" is not a positive number of seconds`);
  return Math.round(seconds * 1000);
}

/** Parses a flag of seconds, or `off` (undefined) for a feature that is on by default. */
export function parseSecondsOrOff(text: string, flag: string): number | undefined {
  return text === "off" ? undefined : parseSeconds(text, flag);
}

/** Parses a flag of seconds that may be left out (a feature that is off by default). */
export function parseOptionalSeconds(text: string | undefined, flag: string): number | undefined {
  return text === undefined ? undefined : parseSeconds(text, flag);
}

/** Applies `--log-format`. */
export function applyLogFormat(text: string): void {
  const known = LOG_FORMATS.find((name) => name === text);
  if (!known) throw new UsageError(`--log-format "${text}" is neither text nor json`);
  setLogFormat(known);
}

/** Applies `--log-level`. */
export function applyLogLevel(text: string): LogLevel {
  try {
    const level = parseLogLevel(text);
    setLogLevel(level);
    return level;
  } catch (error) {
    throw new UsageError(`--log-level: ${(error as Error).message}`);
  }
}

/**
 * Runs an entry script's main function and returns its exit code: 0, or for a thrown error one
 * line on stderr and `exitCodeFor(error)` (default: {@link EXIT_USAGE} for usage errors, else 1).
 */
export async function runCommand(
  name: string,
  main: () => Promise<void>,
  exitCodeFor: (error: Error) => number | undefined = () => undefined,
): Promise<number> {
  try {
    await main();
    return 0;
  } catch (error) {
    const err = error as Error;
    const isUsage = err instanceof UsageError ||
      String((err as { code?: string }).code).startsWith("ERR_PARSE_ARGS");
    console.error(`${name}: ${err.message}${isUsage ? ` (see ${name} --help)` : ""}`);
    return exitCodeFor(err) ?? (isUsage ? EXIT_USAGE : 1);
  }
}

/** Calls `stop` on the first SIGINT or SIGTERM, and `force` on a second one. */
export function onShutdownSignal(stop: (signal: string) => void, force: () => void): void {
  let stopping = false;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      if (stopping) return force();
      stopping = true;
      stop(signal);
    });
  }
}

/**
 * The signal that makes a relay or agent log its status line. Not SIGUSR1: Deno, like Node,
 * answers SIGUSR1 by opening a V8 inspector on 127.0.0.1:9229, which any local user could
 * attach to and read the process's memory (the secret) from.
 */
export const STATUS_SIGNAL = "SIGUSR2";

/**
 * Logs one `status: key=value ...` line, the fields of `read()` and the process's memory (e.g.
 * `status: agents=2 pending=0 rss_mib=80.2 heap_mib=6.1`), each time the process receives
 * {@link STATUS_SIGNAL}, so an operator can run `kill -USR2 PID` and read the logs.
 */
export function onStatusSignal(log: Logger, read: () => object): void {
  Deno.addSignalListener(STATUS_SIGNAL, () => {
    // With gc exposed (lib/launch.ts), the heap reported is what is still referenced.
    (globalThis as { gc?: () => void }).gc?.();
    const memory = Deno.memoryUsage();
    const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
    const fields = Object.entries({
      ...read(),
      rss_mib: mib(memory.rss),
      heap_mib: mib(memory.heapUsed),
    }).map(([key, value]) => `${key}=${/\s/.test(String(value)) ? JSON.stringify(value) : value}`);
    log.info(`status: ${fields.join(" ")}`);
  });
}
