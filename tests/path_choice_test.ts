/** Which path the agent keeps, what it skips, and when it gives up (lib/agent/path_choice.ts). */

import { assertEquals, assertRejects } from "./assert.ts";
import { PathChoice } from "../lib/agent/path_choice.ts";
import type { RelayPath } from "../lib/agent/relay_paths.ts";
import { AgentFatalError, type SessionEnd } from "../lib/agent/session.ts";
import { direct, type Route } from "../lib/transport/transport.ts";
import { TcpDialer } from "../lib/transport/tcp.ts";

const proxy: Route = { name: "via a proxy", open: () => Promise.reject(new Error("unused")) };
const path = (name: string, route = direct): RelayPath => ({
  name,
  route,
  dialer: new TcpDialer({ hostname: "127.0.0.1", port: 1 }),
});
const paths = [path("TLS"), path("WebSocket"), path("proxied", proxy)];

/** Sessions that end as `outcomes` say, by path name; records the order tried. */
function sessions(outcomes: Record<string, SessionEnd | AgentFatalError>, tried: string[]) {
  return (over: RelayPath, onEstablished: () => void) => {
    tried.push(over.name);
    const outcome = outcomes[over.name];
    if (outcome instanceof AgentFatalError) return Promise.reject(outcome);
    if (outcome.established) onEstablished();
    return Promise.resolve(outcome);
  };
}

Deno.test("path choice: an unreachable route is not tried again with another transport", async () => {
  const choice = new PathChoice(paths);
  const tried: string[] = [];
  const ended = await choice.attempt(sessions({
    TLS: { reason: "timed out", established: false, unreachable: true },
    proxied: { reason: "relay closed", established: true },
  }, tried));
  assertEquals(tried, ["TLS", "proxied"]);
  assertEquals(ended.established, true);
  assertEquals(choice.chosen?.name, "proxied");

  const again: string[] = [];
  await choice.attempt(sessions({ proxied: { reason: "lost", established: false } }, again));
  assertEquals(again, ["proxied"], "the next attempt starts from the path chosen");
});

Deno.test("path choice: a path's fatal failure lets the next one try; all failing so is fatal", async () => {
  const untrusted = new AgentFatalError("certificate not trusted", true);
  const tried: string[] = [];
  const ended = await new PathChoice(paths).attempt(sessions({
    TLS: untrusted,
    WebSocket: { reason: "refused", established: false },
    proxied: { reason: "proxy down", established: false, unreachable: true },
  }, tried));
  assertEquals(tried, ["TLS", "WebSocket", "proxied"]);
  assertEquals(
    ended.reason,
    "no path works (TLS: certificate not trusted; WebSocket: refused; proxied: proxy down)",
  );
  const allFatal = { TLS: untrusted, WebSocket: untrusted, proxied: untrusted };
  await assertRejects(new PathChoice(paths).attempt(sessions(allFatal, [])), /TLS: certificate/);
  const refused = { ...allFatal, TLS: new AgentFatalError("wrong secret") };
  const before: string[] = [];
  await assertRejects(new PathChoice(paths).attempt(sessions(refused, before)), /: wrong secret$/);
  assertEquals(before, ["TLS"], "the relay's own refusal stops at once");
});
