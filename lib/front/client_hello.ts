/**
 * Reading a TLS ClientHello to learn the server name (SNI) a client asks for, without
 * terminating TLS: the records read are kept whole, to be passed on first. The hello may be split
 * over several records, and each record over several TCP segments.
 */

import type { Conn } from "../net.ts";

/** Largest ClientHello read (records and all); a longer one is refused. */
export const MAX_HELLO_BYTES = 16 * 1024;

/** What the start of a TLS connection said. */
export type HelloResult =
  /** The bytes read (all whole records, ending with the hello's), and the name, if any. */
  | { kind: "hello"; bytes: Uint8Array; serverName?: string }
  /** Not a TLS ClientHello, or one over the limit. */
  | { kind: "bad"; why: string }
  /** The client went away, or sent nothing in time. */
  | { kind: "gone" };

const HANDSHAKE = 22;
const CLIENT_HELLO = 1;
const SERVER_NAME = 0;

/** Reads whole TLS records from `conn` until they hold a complete ClientHello. */
export async function readClientHello(conn: Conn, timeoutMs: number): Promise<HelloResult> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  const buffer = new Uint8Array(MAX_HELLO_BYTES + 5);
  let length = 0;
  try {
    while (true) {
      const parsed = parseRecords(buffer.subarray(0, length));
      if (parsed !== "more") {
        return "why" in parsed
          ? { kind: "bad", why: parsed.why }
          : { kind: "hello", bytes: buffer.slice(0, parsed.end), serverName: parsed.serverName };
      }
      if (length === buffer.length) return { kind: "bad", why: "ClientHello too large" };
      const read = conn.read(buffer.subarray(length));
      read.catch(() => {});
      const count = await Promise.race([read, timeout]).catch(() => null);
      if (count === "timeout" || count === null) return { kind: "gone" };
      length += count;
    }
  } finally {
    clearTimeout(timer);
  }
}

type Parsed = "more" | { why: string } | { end: number; serverName?: string };

/** The ClientHello in `bytes` (whole handshake records), or "more" if it is not complete yet. */
function parseRecords(bytes: Uint8Array): Parsed {
  const handshake: number[] = [];
  let at = 0;
  while (at + 5 <= bytes.length) {
    if (bytes[at] !== HANDSHAKE || bytes[at + 1] !== 3) return { why: "not a TLS handshake" };
    const recordLength = (bytes[at + 3] << 8) | bytes[at + 4];
    if (at + 5 + recordLength > bytes.length) return "more";
    for (let i = at + 5; i < at + 5 + recordLength; i++) handshake.push(bytes[i]);
    at += 5 + recordLength;
    if (handshake.length >= 4) {
      if (handshake[0] !== CLIENT_HELLO) return { why: "the first handshake is no ClientHello" };
      const helloLength = (handshake[1] << 16) | (handshake[2] << 8) | handshake[3];
      if (helloLength > MAX_HELLO_BYTES) return { why: "ClientHello too large" };
      if (handshake.length >= 4 + helloLength) {
        return {
          end: at,
          serverName: serverNameOf(new Uint8Array(handshake.slice(4, 4 + helloLength))),
        };
      }
    }
  }
  if (at < bytes.length && bytes[at] !== HANDSHAKE) return { why: "not a TLS handshake" };
  return "more";
}

/** The host_name of a ClientHello body's server_name extension (RFC 6066 §3), if it has one. */
export function serverNameOf(hello: Uint8Array): string | undefined {
  const view = new DataView(hello.buffer, hello.byteOffset, hello.byteLength);
  let at = 2 + 32; // version, random
  const skip = (lengthBytes: 1 | 2) => {
    if (at + lengthBytes > hello.length) throw new RangeError();
    at += lengthBytes + (lengthBytes === 1 ? hello[at] : view.getUint16(at));
  };
  try {
    skip(1); // session id
    skip(2); // cipher suites
    skip(1); // compression methods
    if (at + 2 > hello.length) return undefined; // no extensions
    const end = Math.min(hello.length, at + 2 + view.getUint16(at));
    at += 2;
    while (at + 4 <= end) {
      const type = view.getUint16(at);
      const length = view.getUint16(at + 2);
      at += 4;
      if (type === SERVER_NAME && length >= 5 && hello[at + 2] === 0) {
        const nameLength = view.getUint16(at + 3);
        const name = new TextDecoder().decode(hello.subarray(at + 5, at + 5 + nameLength));
        return name.toLowerCase().replace(/\.$/, "") || undefined;
      }
      at += length;
    }
  } catch {
    // truncated: no name
  }
  return undefined;
}
