/**
 * The admin API of a relay or an agent (`--admin HOST:PORT`, on loopback by default), served with
 * `Deno.serve`: `GET /` (a status page, lib/admin/status_page.ts), `GET /healthz` (200 "ok" while
 * the process runs), `GET /status` (JSON), and `GET /metrics` (Prometheus text,
 * lib/admin/metrics.ts). Bound beyond loopback it must have a
 * token (`--admin-token-file`), which every request then carries as `Authorization: Bearer
 * TOKEN`; it is compared in constant time. The relay's `--health` serves its health routes alone,
 * without a token.
 */

import { sameToken } from "../auth.ts";
import { createLogger } from "../log.ts";
import { formatHostPort, type HostPort } from "../address.ts";
import { METRICS_CONTENT_TYPE } from "./metrics.ts";
import { statusPage } from "./status_page.ts";

/** What the admin API serves, read afresh for each request. */
export interface AdminRoutes {
  /** The `/status` document. */
  status(): unknown;
  /** The `/metrics` text. */
  metrics(): string;
  /** Routes of the program's own (the agent's `/services`): a response, or undefined for none. */
  extra?(request: Request, path: string): Promise<Response | undefined>;
}

/** How the admin API is started. */
export interface AdminOptions {
  address: HostPort;
  /** The token requests must carry; required when `address` is not loopback. */
  token?: string;
  /** "relay" or "agent", for logs. */
  program: string;
  routes: AdminRoutes;
  /**
   * Serve only `/healthz` and `/healthz/SERVICE`, with no token (the relay's `--health`, for a
   * load balancer's checks): nothing else is told there.
   */
  healthOnly?: boolean;
}

/** A running admin API. */
export interface Admin {
  /** Where it listens, with the actual port when 0 was asked for. */
  address: HostPort;
  close(): Promise<void>;
}

const log = createLogger("admin");

/** Whether `hostname` is a loopback address (or `localhost`). */
export function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "::1" || hostname === "[::1]" ||
    /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/** Why the admin API may not listen on `address` with `token`, if it may not. */
export function tokenProblem(address: HostPort, token: string | undefined): string | undefined {
  if (token || isLoopback(address.hostname)) return undefined;
  return `the admin API on ${formatHostPort(address)} is reachable beyond this machine: give ` +
    "it a token with --admin-token-file, or bind it to loopback (--admin 127.0.0.1:PORT)";
}

/** What the health-only listener serves: `/healthz` and `/healthz/SERVICE`. */
const HEALTH_CHECK_PATH = /^\/healthz(\/[^/]+)?$/;

/** Starts the admin API; throws, saying what to do, when it cannot listen or lacks a token. */
export async function startAdmin(options: AdminOptions): Promise<Admin> {
  const { address, token, routes, program, healthOnly = false } = options;
  const problem = healthOnly ? undefined : tokenProblem(address, token);
  if (problem) throw new Error(problem);
  const listening = Promise.withResolvers<Deno.NetAddr>();
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: address.hostname,
      port: address.port,
      onListen: (addr) => listening.resolve(addr),
      onError: (error) => {
        log.warn(`${program} admin API: ${(error as Error).message}`);
        return new Response("internal error\n", { status: 500 });
      },
    }, (request) => {
      const path = new URL(request.url).pathname;
      if (healthOnly && !HEALTH_CHECK_PATH.test(path)) {
        return new Response("not found: only /healthz and /healthz/SERVICE here\n", {
          status: 404,
        });
      }
      return answer(request, path, routes, token, program);
    });
  } catch (error) {
    const [what, flag] = healthOnly ? ["health endpoint", "--health"] : ["admin API", "--admin"];
    throw new Error(
      `cannot start the ${what} on ${formatHostPort(address)}: ${(error as Error).message} ` +
        `(choose another with ${flag} HOST:PORT${healthOnly ? "" : ", or --admin off"})`,
    );
  }
  const bound = await listening.promise;
  const at = { hostname: address.hostname, port: bound.port };
  log.info(
    healthOnly
      ? `${program} health endpoint on http://${formatHostPort(at)}/healthz (and /healthz/SERVICE)`
      : `${program} admin API on http://${formatHostPort(at)}/ (status, metrics, healthz)`,
  );
  return { address: at, close: () => server.shutdown() };
}

async function answer(
  request: Request,
  path: string,
  routes: AdminRoutes,
  token: string | undefined,
  program: string,
): Promise<Response> {
  if (token && !sameToken(`Bearer ${token}`, request.headers.get("authorization") ?? "")) {
    return new Response("a valid admin token is required (Authorization: Bearer TOKEN)\n", {
      status: 401,
      headers: { "www-authenticate": 'Bearer realm="porthole admin"' },
    });
  }
  const extra = await routes.extra?.(request, path);
  if (extra) return extra;
  if (request.method !== "GET" && request.method !== "HEAD") {
    return new Response("only GET\n", { status: 405, headers: { allow: "GET, HEAD" } });
  }
  switch (path) {
    case "/":
      return new Response(statusPage(program), {
        headers: { "content-type": "text/html; charset=utf-8" },
      });
    case "/healthz":
      return new Response("ok\n");
    case "/status":
      return Response.json(routes.status());
    case "/metrics":
      return new Response(routes.metrics(), { headers: { "content-type": METRICS_CONTENT_TYPE } });
    default:
      return new Response("not found: try /, /status, /metrics or /healthz\n", { status: 404 });
  }
}
