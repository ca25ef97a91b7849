/**
 * The PROXY protocol header (HAProxy's, versions 1 and 2) that tells a service the address of
 * the client a connection really comes from, so that nginx, HAProxy and others can log and filter
 * by it. The agent writes it first on the connection to a service that asks for it.
 */

import type { HostPort } from "./net.ts";

/** The versions of the PROXY protocol. */
export type ProxyVersion = 1 | 2;

/** The 12 bytes that open a version 2 header. */
const V2_SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

/** An address's bytes (4 for IPv4, 16 for IPv6), or undefined if it is neither. */
async function ipBytes(hostname: string): Promise<Uint8Array | undefined> {
  // Loaded only for a service that asks for the header: being CommonJS, ipaddr.js brings Deno's
  // Node.js module loader with it (~2 MiB).
  const { default: ipaddr } = await import("ipaddr.js");
  if (!ipaddr.isValid(hostname)) return undefined;
  return new Uint8Array(ipaddr.parse(hostname).toByteArray());
}

/**
 * The PROXY header for a connection from `client` to `server` (the relay's public address the
 * client dialled). Addresses of different families, or not addresses at all, give the header
 * that says "unknown", which a service then treats as a connection of its own.
 *
 * @example
 * ```ts
 * const client = { hostname: "203.0.113.7", port: 51234 };
 * const server = { hostname: "198.51.100.1", port: 443 };
 * new TextDecoder().decode(await proxyHeader(1, client, server));
 * // "PROXY TCP4 203.0.113.7 198.51.100.1 51234 443\r\n"
 * ```
 */
export async function proxyHeader(
  version: ProxyVersion,
  client: HostPort,
  server: HostPort,
): Promise<Uint8Array> {
  const source = await ipBytes(client.hostname);
  const destination = await ipBytes(server.hostname);
  const family = source && destination && source.length === destination.length
    ? source.length === 4 ? "TCP4" : "TCP6"
    : undefined;
  if (version === 1) {
    const line = family
      ? `PROXY ${family} ${client.hostname} ${server.hostname} ${client.port} ${server.port}\r\n`
      : "PROXY UNKNOWN\r\n";
    return new TextEncoder().encode(line);
  }
  const addresses = family ? source!.length * 2 + 4 : 0;
  const header = new Uint8Array(16 + addresses);
  header.set(V2_SIGNATURE);
  header[12] = 0x21; // version 2, PROXY
  header[13] = family === "TCP4" ? 0x11 : family === "TCP6" ? 0x21 : 0x00;
  const view = new DataView(header.buffer);
  view.setUint16(14, addresses);
  if (family) {
    header.set(source!, 16);
    header.set(destination!, 16 + source!.length);
    view.setUint16(16 + source!.length * 2, client.port);
    view.setUint16(18 + source!.length * 2, server.port);
  }
  return header;
}
