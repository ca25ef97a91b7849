/**
 * Accepting: a peer that resets before it is accepted (as a load balancer's health check does)
 * is neither logged as an error nor a reason to pause; other accept errors are reported and
 * accepting resumes after a pause.
 */

import { assert, assertEquals } from "./assert.ts";
import { type Conn, type Listener } from "../lib/net.ts";
import { ACCEPT_RETRY_MS, acceptEach } from "../lib/listen.ts";

/** A listener whose `accept` fails with each of `errors` in turn, then yields `conn`, then closes. */
function listenerFailing(errors: Error[], conn: Conn): Listener<Conn> {
  const outcomes = [
    ...errors.map((error) => () => Promise.reject(error)),
    () => Promise.resolve(conn),
  ];
  return {
    addr: { transport: "tcp", hostname: "127.0.0.1", port: 1 },
    accept: () => (outcomes.shift() ?? (() => Promise.reject(new Deno.errors.BadResource())))(),
    close() {},
  };
}

const conn = {} as Conn;

Deno.test("accept: peers gone before accept are skipped without an error or a pause", async () => {
  const errors: Error[] = [];
  const accepted: Conn[] = [];
  const started = performance.now();
  await acceptEach(
    listenerFailing([
      new Deno.errors.NotConnected("Transport endpoint is not connected (os error 107)"),
      new Deno.errors.ConnectionAborted("aborted"),
      new Deno.errors.ConnectionReset("reset"),
    ], conn),
    (c) => accepted.push(c),
    (error) => errors.push(error),
  );
  assertEquals(errors, []);
  assertEquals(accepted, [conn], "the next connection is accepted");
  assert(performance.now() - started < ACCEPT_RETRY_MS, "no pause before the next accept");
});

Deno.test("accept: another error is reported and accepting resumes after a pause", async () => {
  const errors: Error[] = [];
  const accepted: Conn[] = [];
  const started = performance.now();
  const tooMany = new Error("Too many open files (os error 24)");
  await acceptEach(
    listenerFailing([tooMany], conn),
    (c) => accepted.push(c),
    (e) => errors.push(e),
  );
  assertEquals(errors, [tooMany]);
  assertEquals(accepted, [conn]);
  assert(performance.now() - started >= ACCEPT_RETRY_MS - 1, "a pause before accepting again");
});
