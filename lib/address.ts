/**
 * Network addresses as porthole reads and writes them: `HOST:PORT` endpoints (IPv6 bracketed),
 * port ranges, and the forms logs and messages show.
 */

/** A TCP endpoint as given on the command line. */
export interface HostPort {
  hostname: string;
  port: number;
}

/** An inclusive range of ports. */
export interface PortRange {
  first: number;
  last: number;
}

/**
 * Reads `FIRST-LAST` or a single port as a range within 1-65535; undefined if it is neither.
 *
 * @example
 * ```ts
 * portRangeOf("20000-20999"); // { first: 20000, last: 20999 }
 * ```
 */
export function portRangeOf(text: string): PortRange | undefined {
  const match = /^(\d+)(?:-(\d+))?$/.exec(text);
  const first = Number(match?.[1]);
  const last = Number(match?.[2] ?? match?.[1]);
  return match && first >= 1 && last <= 65535 && first <= last ? { first, last } : undefined;
}

/**
 * Parses `host:port`, `[v6]:port` or a host name with a port.
 *
 * @example
 * ```ts
 * parseHostPort("[::1]:7835"); // { hostname: "::1", port: 7835 }
 * ```
 */
export function parseHostPort(text: string): HostPort {
  const match = /^\[([^\]]+)\]:(\d+)$/.exec(text) ??
    /^([^:\[\]\s]+):(\d+)$/.exec(text);
  const port = match ? Number(match[2]) : NaN;
  if (!match || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(
      `"${text}" is not HOST:PORT (examples: 127.0.0.1:3000, relay.example.com:7835, [::1]:7835)`,
    );
  }
  return { hostname: match[1], port };
}

/** Formats an endpoint for logs and messages, bracketing IPv6 hosts. */
export function formatHostPort({ hostname, port }: HostPort): string {
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}

/** Formats a connection's remote (or any) network address. */
export function formatAddr(addr: Deno.Addr): string {
  return "hostname" in addr ? formatHostPort(addr) : addr.transport;
}

/** True for 0.0.0.0 and ::, which a listener binds but no client can dial. */
export function isUnspecified(hostname: string): boolean {
  return hostname === "0.0.0.0" || hostname === "::" || hostname === "[::]";
}
