/**
 * Configuration files in TOML (parsed by smol-toml, loaded only when a file is read): the
 * document, and checks of its values whose errors name the file, the key and what is expected.
 *
 * @example
 * ```ts
 * const file = await TomlFile.parse('[limits]\nmax_unauthenticated = 64\n', "relay.toml");
 * const root = file.table(file.document, "the file", ["limits"]);
 * const limits = file.table(root.limits, "limits", ["max_unauthenticated"]);
 * file.count(limits.max_unauthenticated, "limits.max_unauthenticated"); // 64
 * ```
 */

/** A TOML table as parsed. */
export type Table = Record<string, unknown>;

/** Reads a configuration file's text; throws a message naming the file. */
export async function readConfigText(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    throw new Error(`cannot read the config file ${path}: ${(error as Error).message}`);
  }
}

/** A parsed file, and the checks of its values. */
export class TomlFile {
  /** Where the text came from, at the start of every error. */
  readonly source: string;
  /** The whole document. */
  readonly document: Table;

  private constructor(source: string, document: Table) {
    this.source = source;
    this.document = document;
  }

  /** Parses `text`; a syntax error names `source` and the first line of the problem. */
  static async parse(text: string, source: string): Promise<TomlFile> {
    const { parse } = await import("smol-toml");
    try {
      return new TomlFile(source, parse(text) as Table);
    } catch (error) {
      throw new Error(`${source}: ${(error as Error).message.split("\n")[0]}`);
    }
  }

  /** Throws `<source>: <key> <problem>`. */
  fail(key: string, problem: string): never {
    throw new Error(`${this.source}: ${key} ${problem}`);
  }

  /** `value` as a table whose keys are all in `allowed`. */
  table(value: unknown, key: string, allowed: readonly string[]): Table {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      this.fail(key, "must be a table");
    }
    for (const name of Object.keys(value as Table)) {
      if (!allowed.includes(name)) {
        this.fail(`${key}.${name}`, `is not a known setting (known: ${allowed.join(", ")})`);
      }
    }
    return value as Table;
  }

  /** `value` as a positive whole number, or undefined when it is not given. */
  count(value: unknown, key: string): number | undefined {
    if (value === undefined) return undefined;
    if (!(typeof value === "number" && Number.isInteger(value) && value > 0)) {
      this.fail(key, "must be a positive whole number");
    }
    return value as number;
  }

  /** `value` as a list of strings. */
  strings(value: unknown, key: string): string[] {
    if (!Array.isArray(value) || value.some((item) => typeof item !== "string")) {
      this.fail(key, "must be a list of strings");
    }
    return value as string[];
  }
}
