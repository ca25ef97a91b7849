/**
 * The PROXY protocol header (HAProxy's, versions 1 and 2) that tells a service the address of
 * the client a connection really comes from, so that nginx, HAProxy and others can log and filter
 * by it. The agent writes it first on the connection to a service that asks for it; the relay
 * reads one from a load balancer in front of it that it trusts.
 */

import { type Conn, readExactly } from "./net.ts";
import { type HostPort } from "./address.ts";

const HEADER = "its PROXY header";

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

/** Longest version 1 header (the spec's limit, with its CRLF). */
export const MAX_V1_HEADER_BYTES = 107;

/** What a PROXY header said: the client it names, none (`local`: a health check), or nonsense. */
export type ReadHeader = { client: HostPort } | { local: true } | { bad: string };

/**
 * Reads a PROXY header (version 1 or 2) from the start of `conn`, and not a byte more, so what
 * follows it is the client's own. Rejects if the connection fails or ends.
 */
export async function readProxyHeader(conn: Conn): Promise<ReadHeader> {
  const start = await readExactly(conn, 15, HEADER); // "PROXY UNKNOWN\r\n", the shortest header
  if (V2_SIGNATURE.every((byte, i) => start[i] === byte)) {
    const rest = await readExactly(conn, 1, HEADER);
    const length = (start[14] << 8) | rest[0];
    const body = await readExactly(conn, length, HEADER);
    const command = start[12];
    if (command === 0x20) return { local: true };
    if (command !== 0x21) return { bad: `PROXY v2 command ${command}` };
    const size = start[13] === 0x11 ? 4 : start[13] === 0x21 ? 16 : 0;
    if (size === 0 || length < size * 2 + 4) return { local: true }; // unspecified or not TCP
    const view = new DataView(body.buffer, body.byteOffset);
    const hostname = await ipText(body.subarray(0, size));
    return { client: { hostname, port: view.getUint16(size * 2) } };
  }
  let line = new TextDecoder().decode(start);
  if (!line.startsWith("PROXY ")) return { bad: "no PROXY header" };
  while (!line.endsWith("\r\n")) {
    if (line.length >= MAX_V1_HEADER_BYTES) return { bad: "PROXY v1 header too long" };
    line += new TextDecoder().decode(await readExactly(conn, 1, HEADER));
  }
  const [, family, source, , sourcePort] = line.trimEnd().split(" ");
  if (family === "UNKNOWN") return { local: true };
  const port = Number(sourcePort);
  if ((family !== "TCP4" && family !== "TCP6") || !(port >= 0 && port <= 65535) || !source) {
    return { bad: `PROXY v1 header ${JSON.stringify(line.trimEnd())}` };
  }
  return { client: { hostname: source, port } };
}

async function ipText(bytes: Uint8Array): Promise<string> {
  const { default: ipaddr } = await import("ipaddr.js"); // see ipBytes
  return ipaddr.fromByteArray([...bytes]).toString();
}
