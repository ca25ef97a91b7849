/**
 * The paths by which an agent may reach its relay, best first: each a transport (TLS, or a
 * WebSocket over TLS; plain TCP or WebSocket with `--insecure`) over a route (direct, or through
 * the HTTP or SOCKS5 proxy given with `--proxy` or found in the environment the way curl finds
 * it). `--relay HOST:PORT` names no transport, so both are tried; `tls://`, `wss://` and `ws://`
 * name one.
 */

import ipaddr from "ipaddr.js";
import { type HostPort, parseHostPort } from "../address.ts";
import { HttpProxy } from "../transport/http_proxy.ts";
import { Socks5Proxy } from "../transport/socks5_proxy.ts";
import { TcpDialer } from "../transport/tcp.ts";
import { type RelayTrust, TlsDialer } from "../transport/tls.ts";
import { direct as directly, type RelayDialer, type Route } from "../transport/transport.ts";
import { WEBSOCKET_PATH, WebSocketDialer } from "../transport/websocket.ts";

/** One way to reach the relay. */
export interface RelayPath {
  /** For logs and status: "TLS, direct", "WebSocket over TLS, via HTTP proxy proxy:3128". */
  readonly name: string;
  readonly route: Route;
  readonly dialer: RelayDialer;
}

/** The relay as `--relay` names it: where, and which transport if one is named. */
export interface RelayAddress {
  relay: HostPort;
  transport?: "tls" | "websocket";
  /** The WebSocket path (`--relay wss://HOST/PATH`), when the transport is WebSocket. */
  path?: string;
  /** Whether the scheme says plain (`ws://`): it must come with `--insecure`. */
  plain?: boolean;
}

/** The environment variables a proxy is taken from, in curl's order of precedence. */
export const PROXY_VARIABLES = ["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"];
/** The environment variables naming hosts reached without the proxy. */
export const NO_PROXY_VARIABLES = ["no_proxy", "NO_PROXY"];

/**
 * Reads `--relay`: `HOST:PORT`, `tls://HOST:PORT`, `wss://HOST[:PORT][/PATH]` (port 443, path
 * `/porthole` by default) or `ws://…` (port 80).
 *
 * @example
 * ```ts
 * parseRelayAddress("wss://relay.example.com/tunnel");
 * // { relay: { hostname: "relay.example.com", port: 443 }, transport: "websocket", path: "/tunnel" }
 * ```
 */
export function parseRelayAddress(text: string): RelayAddress {
  const scheme = /^([a-z]+):\/\//i.exec(text)?.[1].toLowerCase();
  if (scheme === undefined) return { relay: parseHostPort(text) };
  if (scheme === "tls") return { relay: parseHostPort(text.slice(6)), transport: "tls" };
  if (scheme !== "wss" && scheme !== "ws") {
    throw new Error(`"${text}": the scheme must be tls://, wss:// or ws://, or none (HOST:PORT)`);
  }
  const url = new URL(text);
  const port = url.port ? Number(url.port) : scheme === "wss" ? 443 : 80;
  const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const path = url.pathname === "/" ? WEBSOCKET_PATH : url.pathname;
  return { relay: { hostname, port }, transport: "websocket", path, plain: scheme === "ws" };
}

/**
 * The route `--proxy` names (`http://[USER:PASSWORD@]HOST:PORT`, `socks5://…`, `socks5h://…`,
 * `none`), or else the one the environment names for `relay`; undefined for none.
 */
export function proxyRoute(
  flag: string | undefined,
  relay: HostPort,
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): Route | undefined {
  if (flag === "none") return undefined;
  if (flag !== undefined) return proxyOf(flag, "--proxy");
  const variable = PROXY_VARIABLES.find((name) => env(name));
  if (!variable) return undefined;
  const noProxy = NO_PROXY_VARIABLES.map(env).find((value) => value !== undefined);
  if (noProxy !== undefined && bypasses(noProxy, relay.hostname)) return undefined;
  return proxyOf(env(variable)!, variable);
}

function proxyOf(text: string, where: string): Route {
  const withScheme = /^[a-z0-9]+:\/\//i.test(text) ? text : `http://${text}`; // curl's default
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new Error(
      `${where}: "${text}" is not a proxy URL (http://HOST:PORT, socks5://HOST:PORT)`,
    );
  }
  const scheme = url.protocol.slice(0, -1);
  const defaultPort = scheme === "http" ? 80 : 1080;
  const proxy = {
    hostname: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: url.port ? Number(url.port) : defaultPort,
  };
  const user = url.username
    ? { name: decodeURIComponent(url.username), password: decodeURIComponent(url.password) }
    : undefined;
  if (scheme === "http") return new HttpProxy(proxy, user);
  if (scheme === "socks5" || scheme === "socks5h") return new Socks5Proxy(proxy, user);
  throw new Error(
    `${where}: a ${scheme}:// proxy is not supported; use http:// (CONNECT) or socks5://`,
  );
}

/**
 * Whether a `NO_PROXY` list sends `host` around the proxy, by curl's rules: `*` matches every
 * host; a name matches itself and its subdomains (a leading dot changes nothing); an IP address
 * or CIDR range matches the addresses in it.
 *
 * @example
 * ```ts
 * bypasses("localhost, .corp.example, 10.0.0.0/8", "relay.corp.example"); // true
 * ```
 */
export function bypasses(noProxy: string, host: string): boolean {
  const name = host.toLowerCase().replace(/\.$/, "");
  return noProxy.split(/[\s,]+/).filter(Boolean).some((entry) => {
    if (entry === "*") return true;
    const bare = entry.toLowerCase().replace(/^\./, "").replace(/\.$/, "");
    if (ipaddr.isValid(name) && (ipaddr.isValid(bare) || bare.includes("/"))) {
      try {
        const [range, bits] = bare.includes("/")
          ? ipaddr.parseCIDR(bare)
          : [ipaddr.parse(bare), bare.includes(":") ? 128 : 32];
        const address = ipaddr.parse(name);
        return address.kind() === range.kind() && address.match(range, bits);
      } catch {
        return false;
      }
    }
    return name === bare || name.endsWith(`.${bare}`);
  });
}

/** `route`, but to the address `hostname` whatever name it is given (the relay's). */
function toAddress(route: Route, hostname: string): Route {
  return {
    name: `${route.name} to ${hostname}`,
    open: (to, timeoutMs) => route.open({ hostname, port: to.port }, timeoutMs),
  };
}

/** What the paths are built from. */
export interface PathOptions {
  address: RelayAddress;
  /** How to trust the relay's certificate; undefined for `--insecure`. */
  trust?: RelayTrust;
  /** The proxy, if one applies. */
  proxy?: Route;
  /** Dial this address of the relay's name (one of several it resolves to), not the name. */
  at?: string;
}

/**
 * Every path to try, best first: each transport direct, then the WebSocket through the proxy.
 * TLS is tried before WebSocket; `--insecure` makes them plain TCP and `ws://`.
 *
 * Through a proxy, only the WebSocket: proxies do not pass a TCP half-close (squid and microsocks
 * close the tunnel both ways on the first FIN, and bytes still on their way the other way are
 * lost), and the WebSocket carries porthole's half-close inside, ending TCP only once both
 * directions are done.
 */
export function relayPaths({ address, trust, proxy, at }: PathOptions): RelayPath[] {
  const { relay } = address;
  const direct = at === undefined ? directly : toAddress(directly, at);
  const transports = address.transport === "tls"
    ? ["tls"]
    : address.transport === "websocket"
    ? ["websocket"]
    : ["tls", "websocket"];
  const routes = proxy ? [direct, proxy] : [direct];
  return routes.flatMap((route) =>
    transports.filter((transport) => route === direct || transport === "websocket").map(
      (transport) => {
        const base = trust ? new TlsDialer(relay, trust, route) : new TcpDialer(relay, route);
        const layer = trust ? "TLS" : "plain TCP";
        if (transport === "tls") return { name: `${layer}, ${route.name}`, route, dialer: base };
        return {
          name: `WebSocket over ${layer}, ${route.name}`,
          route,
          dialer: new WebSocketDialer(base, address.path ?? WEBSOCKET_PATH),
        };
      },
    )
  );
}
