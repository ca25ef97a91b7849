/** Reconnection pauses: exponential, capped, jittered, and reset after a success. */

import { assert, assertEquals } from "./assert.ts";
import { Backoff, BACKOFF_JITTER } from "../lib/backoff.ts";

Deno.test("backoff: pauses double from the minimum up to the cap, each shortened by jitter only", () => {
  for (let run = 0; run < 200; run++) {
    const backoff = new Backoff(500, 10_000);
    const steps = [500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000];
    for (const [i, step] of steps.entries()) {
      const pause = backoff.next();
      assertEquals(backoff.attempt, i + 1);
      assert(pause <= step, `attempt ${i + 1}: ${pause} ms is above the step of ${step} ms`);
      assert(pause >= Math.floor(step * (1 - BACKOFF_JITTER)), `attempt ${i + 1}: ${pause} ms`);
    }
  }
});

Deno.test("backoff: pauses are spread out, so agents cut off together do not return together", () => {
  const pauses = new Set(Array.from({ length: 50 }, () => new Backoff(1000, 1000).next()));
  assert(pauses.size > 10, `only ${pauses.size} distinct pauses in 50 draws`);
});

Deno.test("backoff: reset starts again from the minimum; a cap below the minimum wins", () => {
  const backoff = new Backoff(500, 10_000);
  for (let i = 0; i < 6; i++) backoff.next();
  backoff.reset();
  assertEquals(backoff.attempt, 0);
  assert(backoff.next() <= 500);
  assert(new Backoff(500, 200).next() <= 200);
});
