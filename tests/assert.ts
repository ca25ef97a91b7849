/**
 * The assertions the tests use. `node:assert/strict` stands in for @std/assert (JSR is not
 * reachable here); swapping back is this one file.
 */

import assertModule from "node:assert/strict";

/** Fails with `message` unless `condition` holds (and narrows its type). */
export function assert(condition: unknown, message?: string): asserts condition {
  assertModule.ok(condition, message);
}

/** Deep strict equality. */
export const assertEquals: <T>(
  actual: unknown,
  expected: T,
  message?: string,
) => asserts actual is T = assertModule.deepStrictEqual;

/** Fails unless `text` matches `pattern`. */
export function assertMatch(text: string, pattern: RegExp, message?: string): void {
  assertModule.match(text, pattern, message);
}

/** Fails unless `fn` throws an error whose message matches `pattern`. */
export function assertThrows(fn: () => unknown, pattern: RegExp): void {
  assertModule.throws(fn, pattern);
}

/** Fails unless `promise` rejects with an error whose message matches `pattern`. */
export async function assertRejects(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assertModule.rejects(promise, pattern);
}
