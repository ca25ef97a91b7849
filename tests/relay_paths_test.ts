/** How the agent reads --relay, --proxy and the proxy variables, and which paths it tries. */

import { assertEquals, assertThrows } from "./assert.ts";
import { bypasses, parseRelayAddress, proxyRoute, relayPaths } from "../lib/agent/relay_paths.ts";
import { relaySpecs, type ResolvedRelay, resolveRelays } from "../lib/agent/relays_from_flags.ts";

const relay = { hostname: "relay.example.com", port: 7835 };

Deno.test("--relay: HOST:PORT names no transport; tls://, wss:// and ws:// name one", () => {
  assertEquals(parseRelayAddress("relay.example.com:7835"), { relay });
  assertEquals(parseRelayAddress("tls://relay.example.com:7835"), { relay, transport: "tls" });
  assertEquals(parseRelayAddress("wss://relay.example.com"), {
    relay: { hostname: "relay.example.com", port: 443 },
    transport: "websocket",
    path: "/porthole",
    plain: false,
  });
  assertEquals(parseRelayAddress("ws://[::1]:8080/tunnel/agents"), {
    relay: { hostname: "::1", port: 8080 },
    transport: "websocket",
    path: "/tunnel/agents",
    plain: true,
  });
  assertThrows(() => parseRelayAddress("https://relay.example.com"), /the scheme must be/);
});

Deno.test("proxies: --proxy wins, then https_proxy, HTTPS_PROXY, all_proxy, ALL_PROXY", () => {
  const env = (values: Record<string, string>) => (name: string) => values[name];
  const name = (flag: string | undefined, values: Record<string, string>) =>
    proxyRoute(flag, relay, env(values))?.name;
  const all = { HTTPS_PROXY: "http://b:3128", ALL_PROXY: "socks5://c:1080" };
  assertEquals(name("http://a:8080", all), "via HTTP proxy a:8080");
  assertEquals(name(undefined, { https_proxy: "a:3128", ...all }), "via HTTP proxy a:3128");
  assertEquals(name(undefined, all), "via HTTP proxy b:3128");
  assertEquals(name(undefined, { ALL_PROXY: all.ALL_PROXY }), "via SOCKS5 proxy c:1080");
  assertEquals(
    name(undefined, { https_proxy: "", all_proxy: "socks5h://d" }),
    "via SOCKS5 proxy d:1080",
  );
  assertEquals(name("none", all), undefined);
  assertEquals(name(undefined, { ...all, NO_PROXY: ".example.com" }), undefined);
  assertEquals(
    name(undefined, { ...all, no_proxy: "other.org", NO_PROXY: "*" }),
    "via HTTP proxy b:3128",
  );
  assertThrows(() => proxyRoute("ftp://x:21", relay, env({})), /not supported/);
});

Deno.test("NO_PROXY: names with their subdomains, *, IP addresses and CIDR ranges", () => {
  assertEquals(bypasses("example.com", "relay.example.com"), true);
  assertEquals(bypasses(".example.com", "example.com"), true);
  assertEquals(bypasses("example.com", "notexample.com"), false);
  assertEquals(bypasses("localhost, 10.0.0.0/8", "10.1.2.3"), true);
  assertEquals(bypasses("10.0.0.0/8", "192.168.1.1"), false);
  assertEquals(bypasses("::1", "::1"), true);
  assertEquals(bypasses("*", "anything.at.all"), true);
  assertEquals(bypasses("", "relay.example.com"), false);
});

Deno.test("paths: TLS then WebSocket directly, then only the WebSocket through the proxy", () => {
  const proxy = proxyRoute("http://proxy:3128", relay);
  const trust = { kind: "system" } as const;
  const names = (text: string) =>
    relayPaths({ address: parseRelayAddress(text), trust, proxy }).map((path) => path.name);
  assertEquals(names("relay.example.com:7835"), [
    "TLS, direct",
    "WebSocket over TLS, direct",
    "WebSocket over TLS, via HTTP proxy proxy:3128",
  ]);
  assertEquals(names("tls://relay.example.com:7835"), ["TLS, direct"]);
  assertEquals(names("wss://relay.example.com"), [
    "WebSocket over TLS, direct",
    "WebSocket over TLS, via HTTP proxy proxy:3128",
  ]);
  assertEquals(
    relayPaths({ address: parseRelayAddress("relay.example.com:7835") }).map((path) => path.name),
    ["plain TCP, direct", "WebSocket over plain TCP, direct"],
  );
});

Deno.test("relay names: one relay per address of several, followed as the answer changes", async () => {
  const pinned = { insecure: false, fingerprint: "ab".repeat(32) };
  const specs = await relaySpecs({ relay: ["relays.test:7835"], ...pinned });
  const resolve = (previous: ResolvedRelay[], answer: string[] | undefined) =>
    resolveRelays(specs, previous, () => Promise.resolve(answer));
  const names = (relays: ResolvedRelay[]) => relays.map(({ name }) => name);
  const atStart = await resolve([], undefined);
  assertEquals(names(atStart), ["relays.test:7835"], "not resolving at start: dialled by name");
  const two = await resolve(atStart, ["10.0.0.1", "10.0.0.2"]);
  assertEquals(names(two), ["relays.test:7835 (10.0.0.1)", "relays.test:7835 (10.0.0.2)"]);
  assertEquals(await resolve(two, undefined), two, "an answer that fails keeps the relays");
  const one = await resolve(two, ["10.0.0.2"]);
  assertEquals(one, [two[1]], "the one left is kept as it was");
  assertEquals(names(await resolve(one, ["10.0.0.3"])), ["relays.test:7835"], "a new one: by name");
  const proxied = await relaySpecs({
    relay: ["relays.test:7835"],
    proxy: "http://127.0.0.1:3128",
    ...pinned,
  });
  const lookedUp: string[] = [];
  const throughProxy = await resolveRelays(proxied, [], (name) => {
    lookedUp.push(name);
    return Promise.resolve(["10.0.0.1", "10.0.0.2"]);
  });
  assertEquals([names(throughProxy), lookedUp], [["relays.test:7835"], []], "the proxy resolves");
});
