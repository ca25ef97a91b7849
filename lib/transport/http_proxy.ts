/**
 * The route through an HTTP proxy: each connection to the relay is a `CONNECT` tunnel
 * (RFC 9110 §9.3.6), with Basic proxy authentication when the proxy URL holds a user name.
 */

import { headerOf, readHead } from "../http_head.ts";
import { closeQuietly, describeError, writeAll } from "../net.ts";
import { formatHostPort, type HostPort } from "../address.ts";
import { direct, type Route, RouteError } from "./transport.ts";

const encoder = new TextEncoder();

/** Tunnels through the HTTP proxy at `proxy`, authenticating as `user` if given. */
export class HttpProxy implements Route {
  readonly name: string;
  #proxy: HostPort;
  #authorization?: string;

  constructor(proxy: HostPort, user?: { name: string; password: string }) {
    this.#proxy = proxy;
    this.name = `via HTTP proxy ${formatHostPort(proxy)}`;
    if (user) this.#authorization = "Basic " + btoa(`${user.name}:${user.password}`);
  }

  /** A `CONNECT` tunnel to `to`, within `timeoutMs` for each step. */
  async open(to: HostPort, timeoutMs: number): Promise<Deno.TcpConn> {
    const proxy = formatHostPort(this.#proxy);
    const conn = await direct.open(this.#proxy, timeoutMs).catch((error) => {
      throw new RouteError(`${proxyProblem(proxy, error)}: check --proxy (or HTTPS_PROXY)`);
    });
    const target = formatHostPort(to);
    try {
      const authorization = this.#authorization
        ? `Proxy-Authorization: ${this.#authorization}\r\n`
        : "";
      await writeAll(
        conn,
        encoder.encode(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${authorization}\r\n`),
      );
      const answer = await readHead(conn, timeoutMs);
      if (answer.kind !== "head") {
        throw new RouteError(
          `the HTTP proxy at ${proxy} gave no answer to CONNECT ${target} ` +
            `(${answer.kind === "bad" ? answer.why : "it closed the connection"})`,
        );
      }
      const status = answer.text.split("\r\n")[0];
      if (/^HTTP\/1\.[01] 2\d\d\b/.test(status)) {
        if (answer.bytes.length > answer.length) {
          throw new RouteError(`the HTTP proxy at ${proxy} sent bytes the relay did not`);
        }
        return conn;
      }
      throw new RouteError(refusal(proxy, target, status, answer.text, !!this.#authorization));
    } catch (error) {
      closeQuietly(conn);
      throw error instanceof RouteError ? error : new RouteError(proxyProblem(proxy, error));
    }
  }
}

/** What a proxy's refusal of CONNECT means, and what to do about it. */
function refusal(proxy: string, target: string, status: string, head: string, sentUser: boolean) {
  const said = `the HTTP proxy at ${proxy} answered CONNECT ${target} with "${status}"`;
  if (/ 407\b/.test(status)) {
    const asks = headerOf(head, "proxy-authenticate")?.split(" ")[0] ?? "a password";
    return sentUser
      ? `${said}: it refused the user name and password; check them in --proxy http://USER:PASSWORD@HOST:PORT`
      : `${said}: it wants ${asks} authentication; give it in --proxy http://USER:PASSWORD@HOST:PORT`;
  }
  if (/ 40[35]\b/.test(status)) {
    return `${said}: it does not allow tunnels to port ${target.split(":").pop()}; ask its ` +
      "operator to allow it, or run the relay's agent port on 443 and use --relay wss://HOST/PATH";
  }
  return `${said}: the proxy could not open the tunnel`;
}

/** A failure to talk with the proxy, in a line. */
export function proxyProblem(proxy: string, error: unknown): string {
  return `cannot reach the proxy at ${proxy}: ${describeError(error)}`;
}
