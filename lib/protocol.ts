/**
 * The wire protocol between agent and relay: the single source of truth for every message,
 * its framing and its limits.
 *
 * One relay port carries both kinds of agent connection; the first frame says which:
 * - control channel (C1): starts with `hello`, then JSON frames both ways for its whole life;
 * - data channel (C3): starts with `data`, the relay answers `ready` (or `error`), and from then
 *   on the connection carries the client's raw bytes, unframed.
 * - spare data channel (C3 opened ahead, lib/relay/spares.ts, lib/agent/spares.ts): starts with
 *   `spare`, and waits, bound to the agent's session but to no client. When a client arrives,
 *   the relay sends `client` and the client's first bytes on it; the agent answers `accept`
 *   (then raw bytes both ways) or `refuse`. A new connection then waits one round trip of the
 *   agent-relay link instead of the three or four of dialling a data channel first. The relay
 *   offers spares in `welcome` (`spares`: how many it holds per agent); an agent opens them only
 *   then.
 * - early data (lib/early.ts): while a client's data channel is still being opened, its first
 *   bytes and the service's first answer cross the control channel as `early` frames (base64),
 *   at most {@link EARLY_WINDOW_BYTES} each way per connection. The data channel's `data` and
 *   `ready` frames then say how many bytes went early each way, and each end writes those before
 *   the data channel's, so no byte is lost, doubled or reordered. An agent asks for it in `hello`
 *   (`early`: its window), the relay grants it in `welcome`, and says in each `connect` whether
 *   that connection goes early.
 *
 * A frame is a 4-byte big-endian length and that many bytes of UTF-8 JSON (lib/message_codec.ts
 * writes and checks them).
 * The S-numbers refer to the steps of the connection flow in docs/flow.md.
 */

/** Version spoken by this build; `hello` and `data` carry it, and a mismatch is refused. */
export const PROTOCOL_VERSION = 1;
/** Largest frame payload accepted or sent, in bytes. */
export const MAX_FRAME_BYTES = 16 * 1024;
/** Length limit of ids and tokens carried in messages (agent and service ids, nonces, proofs). */
export const MAX_ID_LENGTH = 128;
/** Length limit of free-text fields (reasons, error messages). */
export const MAX_TEXT_LENGTH = 1024;
/** Length limit of list fields (a service's other addresses). */
export const MAX_LIST_LENGTH = 16;
/** Time a new connection has to complete its handshake (first frame, authentication, `ready`). */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** Most bytes a connection sends each way over the control channel before its data channel is up. */
export const EARLY_WINDOW_BYTES = 32 * 1024;
/** Most bytes one `early` frame carries (base64 makes them 4/3 as long; a frame stays small). */
export const EARLY_CHUNK_BYTES = 8 * 1024;
/** Default time between heartbeats on a control channel; the relay tells the agent its value. */
export const HEARTBEAT_INTERVAL_MS = 10_000;
/** A control channel silent for this many heartbeat intervals is considered dead. */
export const HEARTBEAT_MISSES = 3;

/**
 * What a field holds: an id or token (`id`: letters, digits, `.`, `_`, `-`), free `text`, a
 * non-negative integer (`int`), `true` or `false` (`bool`), a service kind (`kind`), a short list
 * of texts (`texts`), up to
 * {@link EARLY_CHUNK_BYTES} raw bytes (`bytes`, base64 on the wire); a trailing `?` makes it
 * optional.
 */
export type FieldKind =
  | "id"
  | "text"
  | "text?"
  | "int"
  | "int?"
  | "bool"
  | "kind?"
  | "texts?"
  | "bytes";
export type Fields = Readonly<Record<string, FieldKind>>;

/** The kinds a service may have (see lib/front/front.ts). */
export const SERVICE_KINDS = ["tcp", "http", "tls"] as const;
/** What a service speaks: `tcp` (anything), `http`, or `tls` (passed through by SNI). */
export type ServiceKind = typeof SERVICE_KINDS[number];

/**
 * Every message an agent sends, by type, with its fields; the steps are those of docs/flow.md.
 * The {@link AgentMessage} type and the decoder (lib/message_codec.ts) both come from this table.
 */
export const AGENT_MESSAGES = {
  /**
   * S1: first frame of a control channel: who the agent is, a nonce the relay must sign, and the
   * early-data window the agent asks for (none if absent).
   */
  hello: { version: "int", agent: "id", nonce: "id", early: "int?" },
  /** S1: the agent's proof that it holds the secret (HMAC over both nonces). */
  auth: { proof: "id" },
  /**
   * S3: publish a service under this id, of a kind (default tcp), optionally asking for a public
   * port and for host names besides `ID.DOMAIN` (may be sent at any time while C1 is up).
   */
  register: { service: "id", kind: "kind?", port: "int?", hosts: "texts?" },
  /** S3: withdraw a service. */
  unregister: { service: "id" },
  /**
   * S3: the service passes its health checks again (`passing`), or fails them: the relay gives it
   * no clients until it passes (sent only on a change; a service starts passing).
   */
  health: { service: "id", passing: "bool", reason: "text?" },
  /** S8: the agent will not serve this client connection, and why. */
  refuse: { conn: "id", reason: "text" },
  /**
   * S10: first frame of a data channel: the one-time connection id, the session it belongs to,
   * and how many of the service's bytes went ahead in `early` frames (none if absent).
   */
  data: { version: "int", session: "id", conn: "id", early: "int?" },
  /** S9b: the service's next bytes for connection `conn`, ahead of its data channel. */
  early: { conn: "id", bytes: "bytes" },
  /** S9a: first frame of a spare data channel, opened ahead for the next client of the session. */
  spare: { version: "int", session: "id" },
  /** S10a: on a spare, after `client`: the service is reached; raw bytes follow. */
  accept: {},
  /** Heartbeat request; the peer answers `pong`. */
  ping: {},
  /** Heartbeat answer. */
  pong: {},
} as const satisfies Record<string, Fields>;

/** Every message the relay sends to an agent, by type; see {@link AGENT_MESSAGES}. */
export const RELAY_MESSAGES = {
  /** S1: the relay's nonce, and the relay's own proof that it holds the secret. */
  challenge: { nonce: "id", proof: "id" },
  /**
   * S2: the agent is authenticated; `session` binds its data channels, `heartbeatMs` paces pings,
   * the agent may keep up to `spares` spare data channels open (none if absent), and send up to
   * `early` bytes per connection ahead of its data channel (none if absent).
   */
  welcome: { session: "id", heartbeatMs: "int", spares: "int?", early: "int?" },
  /** S4: the service is online; clients reach it at `address`, and through other fronts at `also`. */
  registered: { service: "id", address: "text", also: "texts?" },
  /** S4: the service was not accepted, and why. */
  refused: { service: "id", reason: "text" },
  /**
   * S7: a client at `client`, which dialled the relay at `to`, wants `service`; open a data
   * channel presenting `conn`. With `early` (a window in bytes), this connection's first bytes
   * cross the control channel meanwhile (S7b, S9b); without, the service's wait for the data
   * channel (its client's front answers it first, say).
   */
  connect: { service: "id", conn: "id", client: "text", to: "text?", early: "int?" },
  /**
   * S11: the data channel is accepted, `early` of the client's bytes went ahead in `early`
   * frames (none if absent); raw bytes follow.
   */
  ready: { early: "int?" },
  /** S7b: the client's first bytes for connection `conn`, ahead of its data channel. */
  early: { conn: "id", bytes: "bytes" },
  /**
   * S7a: on a spare data channel: a client at `client` (which dialled `to`) wants `service`; its
   * first bytes follow, then the relay waits for `accept` or `refuse` (`conn` names it in logs).
   */
  client: { service: "id", conn: "id", client: "text", to: "text?" },
  /** Sent before the relay closes a connection on anything unexpected. */
  error: { message: "text" },
  /** Heartbeat request; the peer answers `pong`. */
  ping: {},
  /** Heartbeat answer. */
  pong: {},
} as const satisfies Record<string, Fields>;

/** The TypeScript type of a field of kind `K`. */
type FieldType<K extends FieldKind> = K extends "int" | "int?" ? number
  : K extends "bool" ? boolean
  : K extends "kind?" ? ServiceKind
  : K extends "texts?" ? string[]
  : K extends "bytes" ? Uint8Array
  : string;
/** One message type's object: `type`, its required fields, its optional ones. */
type MessageOf<T extends string, F extends Fields> =
  & { type: T }
  & { -readonly [K in keyof F as F[K] extends `${string}?` ? never : K]: FieldType<F[K]> }
  & { -readonly [K in keyof F as F[K] extends `${string}?` ? K : never]?: FieldType<F[K]> };
/** The union of a table's messages. */
type MessagesOf<S extends Record<string, Fields>> = {
  [T in keyof S & string]: Flatten<MessageOf<T, S[T]>>;
}[keyof S & string];
type Flatten<T> = { [K in keyof T]: T[K] } & unknown;

/** Messages an agent sends to the relay (one per entry of the agent's message table). */
export type AgentMessage = MessagesOf<typeof AGENT_MESSAGES>;
/** Messages the relay sends to an agent. */
export type RelayMessage = MessagesOf<typeof RELAY_MESSAGES>;
/** Any message of either direction. */
export type Message = AgentMessage | RelayMessage;
/** The agent's message of type `T`, e.g. `AgentMessageOf<"hello">`. */
export type AgentMessageOf<T extends AgentMessage["type"]> = Extract<AgentMessage, { type: T }>;
/** The relay's message of type `T`, e.g. `RelayMessageOf<"connect">`. */
export type RelayMessageOf<T extends RelayMessage["type"]> = Extract<RelayMessage, { type: T }>;

/**
 * The short form of connection id `conn` that relay and agent logs both show, so one client's
 * lines can be found on both sides (its first 8 characters: the id is spent by then, and what
 * stays unlogged is still far beyond guessing).
 */
export function logId(conn: string): string {
  return conn.slice(0, 8);
}

/** Thrown for bytes that are not a valid frame or message; its text is safe to send back. */
export class ProtocolError extends Error {
  override name = "ProtocolError";
}
