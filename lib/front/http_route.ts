/**
 * Routing HTTP/1.x clients by host name, as the HTTP front and the HTTPS front (after it has
 * terminated TLS) both do: the names services answer to, the request head that names one, and
 * the small answers for clients that cannot be routed.
 */

import { closeQuietly, type Conn, writeAll } from "../net.ts";
import type { Arrival, Credentials, Front, FrontContext, Refusal } from "./front.ts";
import type { HostNames } from "./host_names.ts";
import { HEAD_TIMEOUT_MS, readRequestHead } from "../http_head.ts";

/** How long a client that is answered with an error may go on sending before it is closed. */
export const LINGER_MS = 2_000;

const STATUS_TEXT = {
  400: "Bad Request",
  401: "Unauthorized",
  407: "Proxy Authentication Required",
  403: "Forbidden",
  404: "Not Found",
  408: "Request Timeout",
  502: "Bad Gateway",
};

/**
 * An HTTP response that ends the connection: status line, `fields` (each `Name: value`), and a
 * plain-text body of one line.
 */
export function httpError(
  status: keyof typeof STATUS_TEXT,
  body: string,
  fields: string[] = [],
): Uint8Array {
  const text = new TextEncoder().encode(`${body}\n`);
  const head = new TextEncoder().encode(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      fields.map((field) => `${field}\r\n`).join("") +
      `Content-Length: ${text.length}\r\nConnection: close\r\n\r\n`,
  );
  const response = new Uint8Array(head.length + text.length);
  response.set(head);
  response.set(text, head.length);
  return response;
}

const REFUSALS: Record<Refusal, [502 | 403 | 401, string]> = {
  offline: [502, "the service is offline"],
  unreachable: [502, "the service cannot be reached"],
  denied: [403, "access refused"],
  unauthorized: [401, "this service needs a user name and password"],
};

/** Tells an HTTP client why the relay cannot serve it (502, 403, 401), and closes. */
export function refuseHttp(arrival: Arrival, why: Refusal): void {
  const [status, text] = REFUSALS[why];
  const fields = why === "unauthorized"
    ? [`WWW-Authenticate: Basic realm="${arrival.service}"`]
    : [];
  answer(arrival.conn, httpError(status, text, fields));
}

/** The head fields that carry Basic credentials, and how to find one (the head ends without CRLF). */
const CREDENTIAL_FIELDS = {
  authorization: /\r\nauthorization:[ \t]*basic[ \t]+([A-Za-z0-9+/=]+)[ \t]*(?:\r\n|$)/i,
  "proxy-authorization":
    /\r\nproxy-authorization:[ \t]*basic[ \t]+([A-Za-z0-9+/=]+)[ \t]*(?:\r\n|$)/i,
};

/**
 * The user and password of a request head's Basic authorization (or of another field of the
 * same form, such as Proxy-Authorization), if it has one.
 */
export function basicCredentials(
  head: string,
  field: keyof typeof CREDENTIAL_FIELDS = "authorization",
): Credentials | undefined {
  const encoded = CREDENTIAL_FIELDS[field].exec(head)?.[1];
  if (!encoded) return undefined;
  let decoded: string;
  try {
    decoded = new TextDecoder("utf-8", { fatal: true }).decode(
      Uint8Array.from(atob(encoded), (char) => char.charCodeAt(0)),
    );
  } catch {
    return undefined;
  }
  const colon = decoded.indexOf(":");
  return colon < 0
    ? undefined
    : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * Writes `response`, ends the sending direction, and reads (and drops) what the client still
 * sends for up to {@link LINGER_MS} before closing: closing with unread bytes would reset the
 * connection, and the client could lose the response.
 */
export function answer(conn: Conn, response: Uint8Array): void {
  const timer = setTimeout(() => closeQuietly(conn), LINGER_MS);
  (async () => {
    await writeAll(conn, response);
    await conn.closeWrite();
    const sink = new Uint8Array(4096);
    while (await conn.read(sink) !== null);
  })().catch(() => {}).finally(() => {
    clearTimeout(timer);
    closeQuietly(conn);
  });
}

/**
 * Reads a client's request head and hands it to `context` for the service its host names; a
 * client that names none is answered (400, 408, 404) and closed. `clientOf` tells, once the head
 * is read, the client's address (undefined: close it).
 */
export async function routeHttp(
  conn: Conn,
  clientOf: () => Deno.NetAddr | undefined,
  names: HostNames,
  front: Front,
  context: FrontContext,
  headTimeoutMs = HEAD_TIMEOUT_MS,
): Promise<void> {
  const head = await readRequestHead(conn, headTimeoutMs);
  if (head.kind === "gone") return closeQuietly(conn);
  if (head.kind === "bad") return answer(conn, httpError(head.status, head.why));
  const client = clientOf();
  if (!client) return closeQuietly(conn);
  const service = names.serviceAt(head.host);
  if (service === undefined) {
    return answer(conn, httpError(404, `no service is published at ${head.host}`));
  }
  const credentials = basicCredentials(head.text);
  context.arrive({ service, conn, client, head: head.bytes, front, credentials });
}
