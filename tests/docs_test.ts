/** Documentation that the checks can only see when it is written a certain way. */

import { assertEquals } from "./assert.ts";

/** The .ts files under `dir`, as paths relative to the repository. */
async function* sources(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(new URL(`../${dir}`, import.meta.url))) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) yield* sources(path);
    else if (path.endsWith(".ts")) yield path;
  }
}

Deno.test("every @example in lib/ is fenced, so `deno check --doc-only lib/` checks it", async () => {
  const unfenced: string[] = [];
  for await (const path of sources("lib")) {
    const lines = (await Deno.readTextFile(new URL(`../${path}`, import.meta.url))).split("\n");
    lines.forEach((line, i) => {
      if (/^\s*\* @example\b/.test(line) && !/^\s*\* ```(ts|toml)$/.test(lines[i + 1] ?? "")) {
        unfenced.push(`${path}:${i + 1}`);
      }
    });
  }
  assertEquals(unfenced, [], "start each @example with ```ts (or ```toml for a config file)");
});
