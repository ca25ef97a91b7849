/**
 * The agent's configuration file (`--config FILE`, TOML): every flag as a key, its name with `_`
 * for `-` (`secret_file`, `early_data`), its value as the flag takes it (a switch as true or
 * false, seconds as numbers or strings, a repeatable flag as a list); and the services as tables:
 *
 * ```toml
 * relay = "relay.example.com:7835"
 * secret_file = "/etc/porthole/secret"
 *
 * [services.web]
 * target = "127.0.0.1:3000"
 * kind = "http"                # tcp (default), http or tls
 * hosts = ["www.example.com"]
 * health_check = "http:/healthz,interval=5"
 * ```
 *
 * The file becomes command-line arguments that go before the command line's own, so a flag given
 * there wins (a repeatable one, and `--service` for the services, replaces the file's list).
 * Unknown keys and values of the wrong type are refused naming the file and the key.
 */

import { UsageError } from "../cli.ts";
import type { FlagTable } from "../flags.ts";
import { readConfigText, type Table, TomlFile } from "../toml.ts";

/** Flags that make no sense in the file. */
const NOT_IN_FILE = ["config", "help", "version"];
/** The settings of a service's table. */
const SERVICE_KEYS = ["target", "kind", "port", "hosts", "proxy_protocol", "health_check"];

/**
 * The file at `path` as arguments of the flags of `table`, leaving out what `given` (the command
 * line) sets itself.
 */
export async function configArgs(
  path: string,
  table: FlagTable,
  given: readonly string[],
): Promise<string[]> {
  const file = await TomlFile.parse(await readConfigText(path), path);
  const keys = Object.keys(table).filter((flag) => !NOT_IN_FILE.includes(flag))
    .map((flag) => flag.replaceAll("-", "_"));
  const root = file.table(file.document, "the file", [...keys, "services"]);
  const onCommandLine = (flag: string) =>
    given.some((arg) => arg === `--${flag}` || arg.startsWith(`--${flag}=`));
  const args: string[] = [];
  for (const [key, value] of Object.entries(root)) {
    if (key === "services") {
      if (!onCommandLine("service")) args.push(...serviceArgs(file, value));
      continue;
    }
    const flag = key.replaceAll("_", "-");
    if (onCommandLine(flag)) continue;
    const spec = table[flag];
    if (spec.value === undefined) {
      if (typeof value !== "boolean") file.fail(key, "must be true or false");
      if (value) args.push(`--${flag}`);
    } else if (spec.repeats) {
      const values = typeof value === "string" ? [value] : file.strings(value, key);
      args.push(...values.map((item) => `--${flag}=${item}`));
    } else {
      if (typeof value !== "string" && typeof value !== "number") {
        file.fail(key, `must be a string or a number (as --${flag} ${spec.value} takes it)`);
      }
      args.push(`--${flag}=${value}`);
    }
  }
  return args;
}

/** `[services.ID]` tables as `--service`, `--host` and `--proxy-protocol` arguments. */
function serviceArgs(file: TomlFile, value: unknown): string[] {
  const services = file.table(value, "services", Object.keys(value as Table ?? {}));
  const args: string[] = [];
  for (const [id, entry] of Object.entries(services)) {
    const key = `services.${id}`;
    const service = file.table(entry, key, SERVICE_KEYS);
    if (typeof service.target !== "string") file.fail(`${key}.target`, "must be HOST:PORT");
    const kind = service.kind ?? "tcp";
    if (!["tcp", "http", "tls"].includes(kind as string)) {
      file.fail(`${key}.kind`, "must be tcp, http or tls");
    }
    const port = service.port === undefined ? "" : `@${file.count(service.port, `${key}.port`)}`;
    const scheme = kind === "tcp" ? "" : `${kind}://`;
    args.push(`--service=${id}${port}=${scheme}${service.target}`);
    if (service.hosts !== undefined) {
      args.push(
        ...file.strings(service.hosts, `${key}.hosts`).map((host) => `--host=${id}=${host}`),
      );
    }
    if (service.proxy_protocol !== undefined) {
      if (!["v1", "v2"].includes(service.proxy_protocol as string)) {
        file.fail(`${key}.proxy_protocol`, 'must be "v1" or "v2"');
      }
      args.push(`--proxy-protocol=${id}=${service.proxy_protocol}`);
    }
    if (service.health_check !== undefined) {
      if (typeof service.health_check !== "string") {
        file.fail(`${key}.health_check`, 'must be a check as --health-check takes it, e.g. "tcp"');
      }
      args.push(`--health-check=${id}=${service.health_check}`);
    }
  }
  return args;
}

/** Flags that come from a service's table in the file. */
const SERVICE_FLAGS = ["service", "host", "proxy-protocol", "health-check"];

/**
 * `error` as the file's problem when it is about a flag's value that came from the file at `path`
 * (not from the command line `given`): prefixed with the file and its key, which is what the
 * operator must edit. Other errors are returned as they are.
 */
export function blameFile(error: unknown, path: string | undefined, given: readonly string[]) {
  const flag = error instanceof UsageError ? /^--([a-z-]+)/.exec(error.message)?.[1] : undefined;
  if (!path || !flag) return error;
  const name = SERVICE_FLAGS.includes(flag) ? "service" : flag;
  if (given.some((arg) => arg === `--${name}` || arg.startsWith(`--${name}=`))) return error;
  const key = SERVICE_FLAGS.includes(flag) ? "services" : flag.replaceAll("-", "_");
  return new UsageError(`${path}: ${key}: ${(error as UsageError).message}`);
}
