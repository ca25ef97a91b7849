/**
 * Leveled logging to stderr, one line per event: time, level, component, message.
 * Stands in for @std/log (not reachable here); keep every log call behind this module.
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

let threshold = LOG_LEVELS.indexOf("info");
const encoder = new TextEncoder();

/** Sets the least severe level that is still written. */
export function setLogLevel(level: LogLevel): void {
  threshold = LOG_LEVELS.indexOf(level);
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

/** Creates a logger whose lines name `component` (e.g. "relay", "agent"). */
export function createLogger(component: string): Logger {
  const write = (level: LogLevel) => (message: string) => {
    if (LOG_LEVELS.indexOf(level) < threshold) return;
    const line = `${new Date().toISOString()} ${level.toUpperCase()} ${component}: ${message}\n`;
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
