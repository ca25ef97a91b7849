/**
 * How `relay.ts` and `agent.ts` are started with `deno run` by the demo, the tests and the
 * benchmarks; `make build` and deno.json's tasks use the same flags (tests/cli_test.ts checks).
 *
 * - `-P=relay|agent`: the permission set declared for each in deno.json;
 * - `-q`: no Deno diagnostics (such as "permissions in the config file are experimental");
 * - {@link V8_FLAGS}: a small young generation. Each connection's setup leaves garbage, and V8's
 *   default lets it pile up to tens of MiB before a scavenge; with 1 MiB semispaces, holding 2,000
 *   connections costs ~18 KiB each instead of ~29 KiB, at no measurable cost in speed. And
 *   `--optimize-for-size`, which among other things lets the old generation grow less before a
 *   full collection: 2,000 connections opened 100 at a time then peak ~7 MiB lower (~15.5
 *   instead of ~18 KiB each), again at no measurable cost in connections per second. And
 *   `--expose-gc`, for the relay's young collections while it receives over TLS (lib/transport/node_tls.ts).
 */

/** V8 flags for relay and agent. */
export const V8_FLAGS = "--max-semi-space-size=1,--optimize-for-size,--expose-gc";

/** The `deno` arguments that run `script` (before its own flags). */
export function denoRunArgs(script: "relay" | "agent"): string[] {
  return [
    "run",
    "-q",
    `-P=${script}`,
    `--v8-flags=${V8_FLAGS}`,
    new URL(`../${script}.ts`, import.meta.url).pathname,
  ];
}
