/** Documentation that the checks can only see when it is written a certain way. */

import { assert, assertEquals } from "./assert.ts";

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

Deno.test("docs/flow.md has channels C1-C4 and steps S1-S20, naming files that exist", async () => {
  const read = (path: string) => Deno.readTextFile(new URL(`../${path}`, import.meta.url));
  const flow = await read("docs/flow.md");
  const channels = [...flow.matchAll(/^\| (C\d) /gm)].map((match) => match[1]);
  assertEquals(channels, ["C1", "C2", "C3", "C4"]);
  const steps = [...flow.matchAll(/^\d+\. \*\*(S\d+)\*\* /gm)].map((match) => match[1]);
  assertEquals(steps, Array.from({ length: 20 }, (_, i) => `S${i + 1}`));
  const missing: string[] = [];
  for (const [, path] of flow.matchAll(/`((?:lib\/)?[\w/]+(?:\.ts|\/))`/g)) {
    try {
      await Deno.stat(new URL(`../${path}`, import.meta.url));
    } catch {
      missing.push(path);
    }
  }
  assertEquals(missing, [], "docs/flow.md names files that are not there (moved?)");
  assert((await read("README.md")).includes("(docs/flow.md)"), "README should link docs/flow.md");
});
