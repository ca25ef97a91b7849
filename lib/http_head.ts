/**
 * Reading an HTTP/1.x head (a request's, to learn the host it is for; a response's, for the
 * agent's proxies and WebSocket upgrades), without consuming anything beyond what the head
 * needs: the bytes read are kept whole, to go to the service first.
 */

import type { Conn } from "./net.ts";

/** Largest head read; a longer request is answered 400. */
export const MAX_HEAD_BYTES = 16 * 1024;
/** Time a client has to send its whole request head; then it is answered 408. */
export const HEAD_TIMEOUT_MS = 10_000;

/**
 * A head as read: its bytes and any that came with them (`bytes`, of which the head is the first
 * `length`), and the head as text (without its blank line).
 */
export type Head = { kind: "head"; bytes: Uint8Array; length: number; text: string };

/** Why no head was read. */
export type NoHead =
  /** The peer sent no complete, valid head; `status` is the answer a client gets. */
  | { kind: "bad"; status: 400 | 408; why: string }
  /** The peer went away before sending anything. */
  | { kind: "gone" };

/** A request head as read, with the host it names; or why there is none. */
export type HeadResult = Head & { host: string } | NoHead;

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
  const head = await readHead(conn, timeoutMs, prefix);
  if (head.kind !== "head") return head;
  const host = hostOf(head.text);
  return host ? { ...head, host } : badHead("it names no host");
}

/** Reads `conn` until the end of any HTTP head, as {@link readRequestHead} does. */
export async function readHead(
  conn: Conn,
  timeoutMs = HEAD_TIMEOUT_MS,
  prefix: Uint8Array = new Uint8Array(0),
): Promise<Head | NoHead> {
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

  async function readUntilEnd(): Promise<Head | NoHead> {
    while (true) {
      const end = indexOfEnd(buffer, Math.max(0, searched - 3), length); // the prefix's first
      searched = length;
      if (end >= 0) {
        const text = decoder.decode(buffer.subarray(0, end));
        return { kind: "head", bytes: buffer.subarray(0, length), length: end + 4, text };
      }
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
    }
  }
}

function badHead(why: string): NoHead {
  return { kind: "bad", status: 400, why: `not an HTTP request head: ${why}` };
}

/**
 * The value of header `name` in a head's text (the first one, trimmed), or undefined.
 *
 * @example
 * ```ts
 * headerOf("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket", "upgrade"); // "websocket"
 * ```
 */
export function headerOf(head: string, name: string): string | undefined {
  const prefix = name.toLowerCase() + ":";
  const line = head.split("\r\n").slice(1).find((field) => field.toLowerCase().startsWith(prefix));
  return line?.slice(prefix.length).trim();
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
  const [requestLine] = head.split("\r\n");
  const [, method, target] = /^([A-Z]+) (\S+) HTTP\/1\.[01]$/.exec(requestLine) ?? [];
  if (target === undefined) return undefined;
  const absolute = method === "CONNECT" ? target : /^https?:\/\/([^/?#]+)/i.exec(target)?.[1];
  const header = headerOf(head, "host");
  const authority = absolute ?? header;
  if (!authority) return undefined;
  const host = authority.replace(/^[^@]*@/, "").replace(/:\d*$/, "").replace(/\.$/, "");
  return host.toLowerCase() || undefined;
}
