/**
 * Leveled logging to stderr, one line per event: time, level, component, message; as text, or
 * as one JSON object per line for log shippers (`--log-format json`), with the message's
 * `key=value` pairs as fields of their own. Stands in for @std/log (not reachable here); keep
 * every log call behind this module.
 *
 * @example
 * ```ts
 * const log = createLogger("relay");
 * log.info("listening for agents on 127.0.0.1:7835");
 * ```
 */

/** The levels, least to most severe. */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
/** One of {@link LOG_LEVELS}. */
export type LogLevel = typeof LOG_LEVELS[number];

/** How lines are written. */
export const LOG_FORMATS = ["text", "json"] as const;
/** One of {@link LOG_FORMATS}. */
export type LogFormat = typeof LOG_FORMATS[number];

let threshold = LOG_LEVELS.indexOf("info");
let format: LogFormat = "text";
const encoder = new TextEncoder();

/** Sets the least severe level that is still written. */
export function setLogLevel(level: LogLevel): void {
  threshold = LOG_LEVELS.indexOf(level);
}

/** Writes lines as `text` (the default) or `json` from now on. */
export function setLogFormat(next: LogFormat): void {
  format = next;
}

/** Parses a `--log-level` value, throwing a message that lists the valid ones. */
export function parseLogLevel(text: string): LogLevel {
  const level = LOG_LEVELS.find((name) => name === text.toLowerCase());
  if (!level) {
    throw new Error(
      `unknown log level "${text}": use one of ${LOG_LEVELS.join(", ")}`,
    );
  }
  return level;
}

/** A logger for one component; each method writes one line when its level is enabled. */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

const RESERVED = new Set(["time", "level", "component", "message"]);

/** The `key=value` pairs of a message (`key="quoted value"` too), numbers as numbers. */
function fieldsOf(message: string): Record<string, string | number> {
  const fields: Record<string, string | number> = {};
  for (const [, key, raw] of message.matchAll(/(?:^|\s)(\w+)=("(?:[^"\\]|\\.)*"|[^\s,;)]+)/g)) {
    if (RESERVED.has(key)) continue;
    const value = raw.startsWith('"') ? JSON.parse(raw) : raw;
    fields[key] = /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
  }
  return fields;
}

/** Creates a logger whose lines name `component` (e.g. "relay", "agent"). */
export function createLogger(component: string): Logger {
  const write = (level: LogLevel) => (message: string) => {
    if (LOG_LEVELS.indexOf(level) < threshold) return;
    const time = new Date().toISOString();
    const line = format === "json"
      ? JSON.stringify({ time, level, component, message, ...fieldsOf(message) }) + "\n"
      : `${time} ${level.toUpperCase()} ${component}: ${message}\n`;
    const bytes = encoder.encode(line);
    for (let done = 0; done < bytes.length;) {
      done += Deno.stderr.writeSync(bytes.subarray(done));
    }
  };
  return {
    debug: write("debug"),
    info: write("info"),
    warn: write("warn"),
    error: write("error"),
  };
}
