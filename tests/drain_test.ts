/** Graceful shutdown over a set of connections: wait for them to end, close the rest at the deadline. */

import { assert, assertEquals } from "./assert.ts";
import { socketPair } from "./helpers.ts";
import { drain, OpenConnections } from "../lib/drain.ts";
import type { Logger } from "../lib/log.ts";

/** A logger that keeps its lines for the test to check. */
function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const record = (level: string) => (message: string) => lines.push(`${level} ${message}`);
  return {
    lines,
    debug: record("debug"),
    info: record("info"),
    warn: record("warn"),
    error: record("error"),
  };
}

Deno.test("drain: resolves as soon as the last connection ends, before the deadline", async () => {
  const open = new OpenConnections();
  const [a, b] = await socketPair();
  open.track(a);
  setTimeout(() => {
    a.close();
    open.forget(a);
  }, 50);
  const log = recordingLogger();
  const started = performance.now();
  await drain(open, 10_000, log);
  const took = performance.now() - started;
  assert(took < 2_000, `drain took ${took} ms`);
  assertEquals(open.size, 0);
  assertEquals(log.lines, [
    "info waiting up to 10 s for 1 open connection(s) to finish (signal again to stop at once)",
    "info all connections finished",
  ]);
  b.close();
});

Deno.test("drain: closes what is still open at the deadline", async () => {
  const open = new OpenConnections();
  const [a, b] = await socketPair();
  open.track(a);
  const log = recordingLogger();
  const started = performance.now();
  await drain(open, 200, log);
  assert(performance.now() - started >= 190, "waited for the deadline");
  assertEquals(open.size, 0);
  assertEquals(
    log.lines[1],
    "warn closing 1 connection(s) still open after 0.2 s (raise --shutdown-timeout to give them longer)",
  );
  assertEquals(await b.read(new Uint8Array(1)), null, "the peer sees the close");
  b.close();
});

Deno.test("drain: an empty set needs no waiting", async () => {
  const started = performance.now();
  const log = recordingLogger();
  const open = new OpenConnections();
  await drain(open, 10_000, log);
  assert(performance.now() - started < 100);
  assertEquals(log.lines, []);
});
