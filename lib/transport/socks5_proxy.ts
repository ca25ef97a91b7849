/**
 * The route through a SOCKS5 proxy (RFC 1928): a CONNECT to the relay by name, so that the proxy
 * resolves it (what curl calls socks5h), with RFC 1929 user name and password when the proxy URL
 * holds them.
 */

import { closeQuietly, type Conn, readExactly, writeAll } from "../net.ts";
import { formatHostPort, type HostPort } from "../address.ts";
import { describeSocksReply, SOCKS_VERSION, SocksMethod, SocksReply } from "../socks5.ts";
import { proxyProblem } from "./http_proxy.ts";
import { direct, type Route, RouteError } from "./transport.ts";

const CONNECT = 1, DOMAIN_NAME = 3, IPV4 = 1, IPV6 = 4;
const REPLY = "the SOCKS5 proxy's reply";
const encoder = new TextEncoder();

/** Connects through the SOCKS5 proxy at `proxy`, authenticating as `user` if given. */
export class Socks5Proxy implements Route {
  readonly name: string;
  #proxy: HostPort;
  #user?: { name: string; password: string };

  constructor(proxy: HostPort, user?: { name: string; password: string }) {
    this.#proxy = proxy;
    this.#user = user;
    this.name = `via SOCKS5 proxy ${formatHostPort(proxy)}`;
  }

  /** A connection to `to` through the proxy, within `timeoutMs` in all. */
  async open(to: HostPort, timeoutMs: number): Promise<Deno.TcpConn> {
    const proxy = formatHostPort(this.#proxy);
    const conn = await direct.open(this.#proxy, timeoutMs).catch((error) => {
      throw new RouteError(`${proxyProblem(proxy, error)}: check --proxy (or ALL_PROXY)`);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      closeQuietly(conn);
    }, timeoutMs);
    try {
      await this.#negotiate(conn, proxy);
      await writeAll(conn, connectRequest(to));
      const [, reply, , type] = await readExactly(conn, 4, REPLY);
      if (reply !== SocksReply.Succeeded) {
        throw new RouteError(
          `the SOCKS5 proxy at ${proxy} refused to connect to ${formatHostPort(to)}: ` +
            `${describeSocksReply(reply)}`,
        );
      }
      const length = type === IPV4
        ? 4
        : type === IPV6
        ? 16
        : (await readExactly(conn, 1, REPLY))[0];
      await readExactly(conn, length + 2, REPLY); // the address it bound, and its port
      return conn;
    } catch (error) {
      closeQuietly(conn);
      if (error instanceof RouteError) throw error;
      const why = timedOut ? `no answer within ${timeoutMs} ms` : error;
      throw new RouteError(proxyProblem(proxy, why));
    } finally {
      clearTimeout(timer);
    }
  }

  /** Offers no authentication, or a user name and password, and passes what the proxy picks. */
  async #negotiate(conn: Conn, proxy: string): Promise<void> {
    const offered = this.#user ? SocksMethod.UserPassword : SocksMethod.None;
    await writeAll(conn, new Uint8Array([SOCKS_VERSION, 1, offered]));
    const [, method] = await readExactly(conn, 2, REPLY);
    if (method !== offered) {
      throw new RouteError(
        `the SOCKS5 proxy at ${proxy} ` +
          (this.#user
            ? "does not take a user name and password; remove them from --proxy"
            : "wants a user name and password; give them in --proxy socks5://USER:PASSWORD@HOST:PORT"),
      );
    }
    if (!this.#user) return;
    const name = encoder.encode(this.#user.name), password = encoder.encode(this.#user.password);
    await writeAll(conn, new Uint8Array([1, name.length, ...name, password.length, ...password]));
    const [, status] = await readExactly(conn, 2, REPLY);
    if (status !== 0) {
      throw new RouteError(
        `the SOCKS5 proxy at ${proxy} refused the user name and password; check them in ` +
          "--proxy socks5://USER:PASSWORD@HOST:PORT",
      );
    }
  }
}

/** CONNECT to an IPv4 address as such, anything else by name (the proxy resolves it). */
function connectRequest(to: HostPort): Uint8Array {
  const ipv4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(to.hostname)?.slice(1).map(Number);
  const name = encoder.encode(to.hostname);
  const address = ipv4 ? [IPV4, ...ipv4] : [DOMAIN_NAME, name.length, ...name];
  return new Uint8Array([SOCKS_VERSION, CONNECT, 0, ...address, to.port >> 8, to.port & 0xff]);
}
