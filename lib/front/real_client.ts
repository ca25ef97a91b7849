/**
 * The address a client really comes from: its connection's own, or, when the connection comes
 * from a load balancer the relay trusts (`--proxy-protocol-from`), the one that balancer's PROXY
 * header names, so that access rules and logs see the real client behind it. A trusted peer must
 * send the header; anyone else's is not read (it reaches the service as the client's bytes).
 */

import { createLogger } from "../log.ts";
import { closeQuietly, deadline } from "../net.ts";
import { formatAddr } from "../address.ts";
import { readProxyHeader } from "../proxy_header.ts";
import { LogThrottle } from "../throttle.ts";

/** Time a trusted load balancer has to send its PROXY header. */
export const PROXY_HEADER_TIMEOUT_MS = 5_000;

const log = createLogger("relay");

/** Reads the real client address of connections, trusting the PROXY headers of `trusted`. */
export class RealClients {
  readonly #trusted: ((hostname: string) => boolean) | undefined;
  #throttle = new LogThrottle();

  private constructor(trusted: ((hostname: string) => boolean) | undefined) {
    this.#trusted = trusted;
  }

  /**
   * Trusts the PROXY headers of peers in `trusted`, address ranges such as `10.0.0.0/8` or
   * `2001:db8::1/128`; throws naming a range that is none.
   */
  static async create(trusted: string[]): Promise<RealClients> {
    return new RealClients(trusted.length > 0 ? await matcher(trusted) : undefined);
  }

  /**
   * The client `conn` carries, or undefined when a trusted peer sent no valid header (it is then
   * closed and logged).
   */
  async of(conn: Deno.TcpConn): Promise<Deno.NetAddr | undefined> {
    if (!this.#trusted?.(conn.remoteAddr.hostname)) return conn.remoteAddr;
    const from = formatAddr(conn.remoteAddr);
    let header;
    try {
      header = await deadline(readProxyHeader(conn), PROXY_HEADER_TIMEOUT_MS, conn, "its header");
    } catch (error) {
      header = { bad: (error as Error).message };
    }
    if ("client" in header) return { transport: "tcp", ...header.client };
    if ("local" in header) return conn.remoteAddr;
    closeQuietly(conn);
    this.#throttle.pass(conn.remoteAddr.hostname, (note) => {
      log.warn(
        `connection from ${from}, a trusted load balancer (--proxy-protocol-from), refused: ` +
          `${header.bad}; have it send a PROXY header (HAProxy: send-proxy)${note}`,
      );
    });
    return undefined;
  }
}

/** Whether an address is in one of `ranges` (with ipaddr.js, loaded only when there are some). */
async function matcher(ranges: string[]): Promise<(hostname: string) => boolean> {
  const { default: ipaddr } = await import("ipaddr.js");
  const parsed = ranges.map((range) => {
    try {
      return ipaddr.parseCIDR(range);
    } catch {
      throw new Error(
        `--proxy-protocol-from: "${range}" is not an address range like 10.0.0.0/8 or ::1/128`,
      );
    }
  });
  return (hostname) => {
    if (!ipaddr.isValid(hostname)) return false;
    const address = ipaddr.process(hostname);
    return parsed.some(([base, bits]) =>
      base.kind() === address.kind() && address.match(base, bits)
    );
  };
}
