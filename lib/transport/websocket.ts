/**
 * The WebSocket transport: agent channels as WebSocket upgrades (RFC 6455) at a path of the
 * relay's agent port, over its TLS (`wss://`) or plain TCP (`ws://`, with `--insecure`), so that
 * an agent reaches its relay through HTTP-only proxies, TLS-inspecting proxies and CDNs. Every
 * channel, control or data, is its own WebSocket; the frames are lib/transport/websocket_conn.ts'.
 *
 * The relay tells an upgrade from porthole's own frames by its first bytes ({@link openChannel}),
 * so one agent port takes both.
 */

import { createHash } from "node:crypto";
import { FrameReader } from "../frames.ts";
import { headerOf, readHead } from "../http_head.ts";
import { type Conn, deadline, writeAll } from "../net.ts";
import { formatHostPort, type HostPort } from "../address.ts";
import { ProtocolError } from "../protocol.ts";
import type { RelayDialer } from "./transport.ts";
import { WebSocketConn } from "./websocket_conn.ts";

/** The path agents upgrade at, unless the relay is told another (`--websocket-path`). */
export const WEBSOCKET_PATH = "/porthole";

const ACCEPT_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const GET = new TextEncoder().encode("GET ");

function startsWithGet(bytes: Uint8Array): boolean {
  return bytes.length === GET.length && GET.every((byte, i) => bytes[i] === byte);
}
const encoder = new TextEncoder();

/** Sec-WebSocket-Accept for `key` (RFC 6455 §4.2.2). */
export function acceptValue(key: string): string {
  return createHash("sha1").update(key + ACCEPT_GUID).digest("base64");
}

/** Opens WebSocket channels to the relay over the connections `base` opens to it. */
export class WebSocketDialer implements RelayDialer {
  readonly relay: HostPort;
  #base: RelayDialer;
  #path: string;

  constructor(base: RelayDialer, path = WEBSOCKET_PATH) {
    this.relay = base.relay;
    this.#base = base;
    this.#path = path;
  }

  /** A connection from `base`, upgraded to a WebSocket, within `timeoutMs` for each step. */
  async dial(timeoutMs: number): Promise<Conn> {
    const conn = await this.#base.dial(timeoutMs);
    try {
      return await upgrade(conn, this.relay, this.#path, timeoutMs);
    } catch (error) {
      conn.close();
      throw error;
    }
  }
}

/** Sends the upgrade request for `path` and checks the relay's answer. */
async function upgrade(conn: Conn, relay: HostPort, path: string, timeoutMs: number) {
  const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  const host = formatHostPort(relay);
  await writeAll(
    conn,
    encoder.encode(
      `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    ),
  );
  const where = `the WebSocket upgrade at ${host}${path}`;
  const first = new Uint8Array(2);
  const count = await deadline(conn.read(first), timeoutMs, conn, where);
  if (count !== null && (first[0] === 0x15 || first[0] === 0x16) && first[1] === 0x03) {
    throw new ProtocolError(
      `${where} was answered with TLS: the relay uses TLS, so the agent must too (wss://, ` +
        "without --insecure)",
    );
  }
  const answer = await readHead(conn, timeoutMs, first.subarray(0, count ?? 0));
  if (answer.kind !== "head") {
    throw new Error(
      `${where} got no HTTP answer (${answer.kind === "bad" ? answer.why : "closed"})`,
    );
  }
  const status = answer.text.split("\r\n")[0];
  if (!/^HTTP\/1\.1 101\b/.test(status)) {
    throw new Error(
      `${where} was answered "${status}"` +
        (/ 404\b/.test(status) ? ": check the path in --relay wss://HOST/PATH" : ""),
    );
  }
  if (headerOf(answer.text, "sec-websocket-accept") !== acceptValue(key)) {
    throw new Error(`${where} was answered by something that is not a WebSocket server`);
  }
  return new WebSocketConn(conn, true, answer.bytes.subarray(answer.length));
}

/** An agent channel as the relay's agent port opened it: porthole frames, maybe in a WebSocket. */
export interface AgentChannel {
  conn: Conn;
  reader: FrameReader;
}

/**
 * Opens what an agent sent to the agent port: porthole frames as they are, or, when its first
 * bytes are a `GET`, a WebSocket upgrade at `path` (answered 101, then frames inside it).
 * Undefined when the request was not an upgrade at `path`: it was answered with an HTTP error
 * (404 for another path) and should be closed.
 */
export async function openChannel(conn: Conn, path: string): Promise<AgentChannel | undefined> {
  const reader = new FrameReader(conn);
  if (!startsWithGet(await reader.peek(GET.length))) return { conn, reader };
  const head = await readHead(conn, undefined, reader.takeRest());
  if (head.kind !== "head") return undefined;
  const [, target] = /^GET (\S+) HTTP\/1\.1$/.exec(head.text.split("\r\n")[0]) ?? [];
  const key = headerOf(head.text, "sec-websocket-key");
  const problem = target?.split("?")[0] !== path
    ? "404 Not Found"
    : !/websocket/i.test(headerOf(head.text, "upgrade") ?? "") || !key
    ? "400 Bad Request"
    : headerOf(head.text, "sec-websocket-version") !== "13"
    ? "426 Upgrade Required\r\nSec-WebSocket-Version: 13"
    : undefined;
  if (problem || !key) {
    await writeAll(
      conn,
      encoder.encode(`HTTP/1.1 ${problem}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`),
    ).catch(() => {});
    return undefined;
  }
  await writeAll(
    conn,
    encoder.encode(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        `Sec-WebSocket-Accept: ${acceptValue(key)}\r\n\r\n`,
    ),
  );
  const ws = new WebSocketConn(conn, false, head.bytes.subarray(head.length));
  return { conn: ws, reader: new FrameReader(ws) };
}
