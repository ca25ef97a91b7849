/**
 * Reading an HTTP/1.x request head to learn the host it is for, without consuming anything
 * beyond what the head needs: the bytes read are kept whole, to go to the service first.
 */

import type { Conn } from "../net.ts";

/** Largest request head read to find the host; a longer one is answered 400. */
export const MAX_HEAD_BYTES = 16 * 1024;
/** Time a client has to send its whole request head; then it is answered 408. */
export const HEAD_TIMEOUT_MS = 10_000;

/**
 * A request head as read: its bytes and any that came with them (`bytes`, of which the head is
 * the first `length`), the head as text (without its blank line), and the host it names.
 */
export type HeadResult =
  | { kind: "head"; bytes: Uint8Array; length: number; text: string; host: string }
  /** The client sent no complete, valid head; `status` is the answer it gets. */
  | { kind: "bad"; status: 400 | 408; why: string }
  /** The client went away before sending anything. */
  | { kind: "gone" };

const END_OF_HEAD = [13, 10, 13, 10]; // CRLF CRLF
const decoder = new TextDecoder();

/**
 * Reads `conn` until the end of a request head, within {@link MAX_HEAD_BYTES} and `timeoutMs`;
 * `prefix` is what was already read of it.
 */
export async function readRequestHead(
  conn: Conn,
  timeoutMs = HEAD_TIMEOUT_MS,
  prefix: Uint8Array = new Uint8Array(0),
): Promise<HeadResult> {
  let buffer = new Uint8Array(Math.max(1024, prefix.length));
  buffer.set(prefix);
  let length = prefix.length;
  let searched = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  try {
    return await readUntilEnd();
  } finally {
    clearTimeout(timer);
  }

  async function readUntilEnd(): Promise<HeadResult> {
    while (true) {
      if (length === buffer.length) {
        if (length >= MAX_HEAD_BYTES) {
          return { kind: "bad", status: 400, why: `request head over ${MAX_HEAD_BYTES} bytes` };
        }
        const grown = new Uint8Array(Math.min(buffer.length * 4, MAX_HEAD_BYTES));
        grown.set(buffer);
        buffer = grown;
      }
      const read = conn.read(buffer.subarray(length));
      read.catch(() => {}); // after a timeout, the read still under way fails when conn closes
      let count;
      try {
        count = await Promise.race([read, timeout]);
      } catch {
        return { kind: "gone" }; // reset by the client
      }
      if (count === "timeout") {
        return { kind: "bad", status: 408, why: `no complete request head within ${timeoutMs} ms` };
      }
      if (count === null) return length === 0 ? { kind: "gone" } : badHead("it ended too early");
      length += count;
      const end = indexOfEnd(buffer, Math.max(0, searched - 3), length);
      searched = length;
      if (end < 0) continue;
      const text = decoder.decode(buffer.subarray(0, end));
      const host = hostOf(text);
      if (!host) return badHead("it names no host");
      return { kind: "head", bytes: buffer.subarray(0, length), length: end + 4, text, host };
    }
  }
}

function badHead(why: string): HeadResult {
  return { kind: "bad", status: 400, why: `not an HTTP request head: ${why}` };
}

function indexOfEnd(buffer: Uint8Array, from: number, to: number): number {
  for (let i = from; i + 4 <= to; i++) {
    if (END_OF_HEAD.every((byte, at) => buffer[i + at] === byte)) return i;
  }
  return -1;
}

/**
 * The host a request head is for, lower-cased and without port: from a CONNECT's target or an
 * absolute request URI if it has one (it wins, RFC 9112 §3.2.2), else from the Host header;
 * undefined if neither.
 *
 * @example
 * ```ts
 * hostOf("GET / HTTP/1.1\r\nHost: Web.Example.com:8080"); // "web.example.com"
 * ```
 */
export function hostOf(head: string): string | undefined {
  const [requestLine, ...fields] = head.split("\r\n");
  const [, method, target] = /^([A-Z]+) (\S+) HTTP\/1\.[01]$/.exec(requestLine) ?? [];
  if (target === undefined) return undefined;
  const absolute = method === "CONNECT" ? target : /^https?:\/\/([^/?#]+)/i.exec(target)?.[1];
  const header = fields.find((field) => /^host:/i.test(field))?.slice(5).trim();
  const authority = absolute ?? header;
  if (!authority) return undefined;
  const host = authority.replace(/^[^@]*@/, "").replace(/:\d*$/, "").replace(/\.$/, "");
  return host.toLowerCase() || undefined;
}
