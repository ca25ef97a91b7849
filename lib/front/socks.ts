/**
 * The server side of SOCKS5 (RFC 1928) as the proxy front needs it: the method negotiation (no
 * authentication, or a user name and password by RFC 1929), a CONNECT request's target, and
 * replies.
 */

import { type Conn, writeAll } from "../net.ts";
import { SOCKS_VERSION, SocksMethod, SocksReply } from "../socks5.ts";
import type { Credentials } from "./front.ts";

/** What a client asked for: a host name and port, or why it cannot be served. */
export type SocksRequest =
  | { kind: "name"; host: string; port: number; rest: Uint8Array; credentials?: Credentials }
  /** An IPv4 or IPv6 address: the relay is no open proxy, so this is refused. */
  | { kind: "address"; address: string }
  | { kind: "bad"; reply: SocksReply; why: string }
  | { kind: "gone" };

/** A reply with an unspecified bound address, as a relay that binds nothing of its own sends. */
export function socksReply(code: SocksReply): Uint8Array {
  return new Uint8Array([SOCKS_VERSION, code, 0, 1, 0, 0, 0, 0, 0, 0]);
}

/** Reads exactly the bytes asked for, keeping what a read brought beyond them. */
class ExactReader {
  #conn: Conn;
  #buffer: Uint8Array;
  #start = 0;
  #end = 0;

  constructor(conn: Conn, first: Uint8Array) {
    this.#conn = conn;
    this.#buffer = new Uint8Array(1024);
    this.#buffer.set(first);
    this.#end = first.length;
  }

  /** The next `count` bytes (at most 255 + a few), or null if the connection ended first. */
  async take(count: number): Promise<Uint8Array | null> {
    while (this.#end - this.#start < count) {
      if (this.#end === this.#buffer.length) return null; // more than a request can hold
      const read = await this.#conn.read(this.#buffer.subarray(this.#end));
      if (read === null) return null;
      this.#end += read;
    }
    this.#start += count;
    return this.#buffer.subarray(this.#start - count, this.#start);
  }

  /** What came after the bytes taken. */
  rest(): Uint8Array {
    return this.#buffer.slice(this.#start, this.#end);
  }
}

/**
 * Negotiates (no authentication) and reads the CONNECT request of a client whose first byte,
 * `first`, says SOCKS5. Replies itself to what it cannot take (no acceptable method, another
 * command); the caller replies to a request it reads.
 */
export async function readSocksRequest(conn: Conn, first: Uint8Array): Promise<SocksRequest> {
  const reader = new ExactReader(conn, first);
  const greeting = await reader.take(2);
  const methods = greeting && await reader.take(greeting[1]);
  if (!greeting || !methods) return { kind: "gone" };
  // A client with a user name and password gives them (RFC 1929), for services that name their
  // visitors; they are checked when its target is known.
  const method = methods.includes(SocksMethod.UserPassword)
    ? SocksMethod.UserPassword
    : methods.includes(SocksMethod.None)
    ? SocksMethod.None
    : SocksMethod.NoneAcceptable;
  await writeAll(conn, new Uint8Array([SOCKS_VERSION, method]));
  if (method === SocksMethod.NoneAcceptable) return { kind: "gone" };
  const credentials = method === SocksMethod.UserPassword
    ? await readUserPassword(reader)
    : undefined;
  if (credentials === null) return { kind: "gone" };
  if (credentials) await writeAll(conn, new Uint8Array([1, 0]));
  const head = await reader.take(4);
  if (!head) return { kind: "gone" };
  const [version, command, , addressType] = head;
  if (version !== SOCKS_VERSION) {
    return { kind: "bad", reply: SocksReply.GeneralFailure, why: `SOCKS version ${version}` };
  }
  let host: string;
  if (addressType === 3) {
    const length = await reader.take(1);
    const name = length && await reader.take(length[0]);
    if (!name) return { kind: "gone" };
    host = new TextDecoder().decode(name);
  } else if (addressType === 1 || addressType === 4) {
    const address = await reader.take(addressType === 1 ? 4 : 16);
    if (!address || !await reader.take(2)) return { kind: "gone" };
    return { kind: "address", address: formatIp(address) };
  } else {
    return {
      kind: "bad",
      reply: SocksReply.AddressTypeNotSupported,
      why: `address type ${addressType}`,
    };
  }
  const port = await reader.take(2);
  if (!port) return { kind: "gone" };
  if (command !== 1) {
    return { kind: "bad", reply: SocksReply.CommandNotSupported, why: `command ${command}` };
  }
  const rest = reader.rest();
  return { kind: "name", host, port: port[0] * 256 + port[1], rest, credentials };
}

/** RFC 1929's user name and password, or null if the client went away or spoke nonsense. */
async function readUserPassword(reader: ExactReader): Promise<Credentials | null> {
  const head = await reader.take(2);
  const user = head && head[0] === 1 && await reader.take(head[1]);
  const length = user && await reader.take(1);
  const password = length && await reader.take(length[0]);
  if (!user || !password) return null;
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { user: text(user), password: text(password) };
}

function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return bytes.join(".");
  const groups = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
  return groups.join(":");
}
