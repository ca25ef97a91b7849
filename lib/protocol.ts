/**
 * The wire protocol between agent and relay: the single source of truth for every message,
 * its framing and its limits.
 *
 * One relay port carries both kinds of agent connection; the first frame says which:
 * - control channel (C1): starts with `hello`, then JSON frames both ways for its whole life;
 * - data channel (C3): starts with `data`, the relay answers `ready` (or `error`), and from then
 *   on the connection carries the client's raw bytes, unframed.
 *
 * A frame is a 4-byte big-endian length and that many bytes of UTF-8 JSON; lib/frames.ts holds
 * the framing (re-exported here, with its limit and ProtocolError, so callers import one module).
 * The S-numbers refer to the steps of the connection flow in docs/flow.md.
 */

import { ProtocolError } from "./frames.ts";

export { encodeFrame, FrameReader, FrameWriter, MAX_FRAME_BYTES, ProtocolError } from "./frames.ts";

/** Version spoken by this build; `hello` and `data` carry it, and a mismatch is refused. */
export const PROTOCOL_VERSION = 1;
/** Length limit of ids and tokens carried in messages (agent and service ids, nonces, proofs). */
export const MAX_ID_LENGTH = 128;
/** Length limit of free-text fields (reasons, error messages). */
export const MAX_TEXT_LENGTH = 1024;
/** Time a new connection has to complete its handshake (first frame, authentication, `ready`). */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** Default time between heartbeats on a control channel; the relay tells the agent its value. */
export const HEARTBEAT_INTERVAL_MS = 10_000;
/** A control channel silent for this many heartbeat intervals is considered dead. */
export const HEARTBEAT_MISSES = 3;

/** A field's kind: "id" (short token), "text" (free text), "int" (non-negative); "?": optional. */
type FieldKind = "id" | "text" | "int" | "int?";
/** The fields of one message: name → kind. */
type FieldKinds = Readonly<Record<string, FieldKind>>;

/**
 * Messages an agent sends to the relay: type → fields. The single source of truth: both
 * {@link AgentMessage} and {@link decodeAgentMessage} come from it.
 */
export const AGENT_MESSAGES = {
  /** S1: first frame of a control channel: who the agent is, and a nonce the relay must sign. */
  hello: { version: "int", agent: "id", nonce: "id" },
  /** S1: the agent's proof that it holds the secret (HMAC over both nonces). */
  auth: { proof: "id" },
  /** S3: publish a service, optionally asking for a public port (any time while C1 is up). */
  register: { service: "id", port: "int?" },
  /** S3: withdraw a service. */
  unregister: { service: "id" },
  /** S8: the agent will not serve this client connection, and why. */
  refuse: { conn: "id", reason: "text" },
  /** S10: first frame of a data channel: the one-time connection id and its session. */
  data: { version: "int", session: "id", conn: "id" },
  /** C1, between steps: heartbeat request; the peer answers `pong`. */
  ping: {},
  /** C1, between steps: heartbeat answer. */
  pong: {},
} as const satisfies Record<string, FieldKinds>;

/**
 * Messages the relay sends to an agent: type → fields. The single source of truth: both
 * {@link RelayMessage} and {@link decodeRelayMessage} come from it.
 */
export const RELAY_MESSAGES = {
  /** S1: the relay's nonce, and the relay's own proof that it holds the secret. */
  challenge: { nonce: "id", proof: "id" },
  /** S2: the agent is in; `session` binds its data channels, `heartbeatMs` paces heartbeats. */
  welcome: { session: "id", heartbeatMs: "int" },
  /** S4: the service is online; clients reach it at `address`. */
  registered: { service: "id", address: "text" },
  /** S4: the service was not accepted, and why. */
  refused: { service: "id", reason: "text" },
  /** S7: a client at `client` wants `service`; open a data channel presenting `conn`. */
  connect: { service: "id", conn: "id", client: "text" },
  /** S11: the data channel is accepted; raw bytes follow. */
  ready: {},
  /** Any step: sent before the relay closes a connection on anything unexpected. */
  error: { message: "text" },
  /** C1, between steps: heartbeat request; the peer answers `pong`. */
  ping: {},
  /** C1, between steps: heartbeat answer. */
  pong: {},
} as const satisfies Record<string, FieldKinds>;

/** The message a table entry describes: `type` first, then each field typed by its kind. */
type MessageFrom<Type extends string, Fields extends FieldKinds> = Flat<
  & { type: Type }
  & { -readonly [F in keyof Fields as Fields[F] extends "int?" ? never : F]: TypeOf<Fields[F]> }
  & { -readonly [F in keyof Fields as Fields[F] extends "int?" ? F : never]?: number }
>;
type TypeOf<Kind extends FieldKind> = Kind extends "int" ? number : string;
type Flat<T> = { [K in keyof T]: T[K] };
/** The union of every message a table describes, discriminated by `type`. */
type MessagesOf<Table extends Record<string, FieldKinds>> = {
  [Type in keyof Table & string]: MessageFrom<Type, Table[Type]>;
}[keyof Table & string];

/** Messages an agent sends to the relay (see {@link AGENT_MESSAGES}). */
export type AgentMessage = MessagesOf<typeof AGENT_MESSAGES>;
/** Messages the relay sends to an agent (see {@link RELAY_MESSAGES}). */
export type RelayMessage = MessagesOf<typeof RELAY_MESSAGES>;
/** Any message of either direction. */
export type Message = AgentMessage | RelayMessage;
/** The agent message of one type, e.g. `AgentMessageOf<"hello">`. */
export type AgentMessageOf<T extends AgentMessage["type"]> = Extract<AgentMessage, { type: T }>;
/** The relay message of one type, e.g. `RelayMessageOf<"welcome">`. */
export type RelayMessageOf<T extends RelayMessage["type"]> = Extract<RelayMessage, { type: T }>;

const ID_PATTERN = /^[A-Za-z0-9._-]+$/;

const decoder = new TextDecoder("utf-8", { fatal: true });

/** Decodes and validates a frame payload sent by an agent. */
export function decodeAgentMessage(payload: Uint8Array): AgentMessage {
  return decodeMessage(payload, AGENT_MESSAGES) as AgentMessage;
}

/** Decodes and validates a frame payload sent by a relay. */
export function decodeRelayMessage(payload: Uint8Array): RelayMessage {
  return decodeMessage(payload, RELAY_MESSAGES) as RelayMessage;
}

function decodeMessage(
  payload: Uint8Array,
  schemas: Record<string, FieldKinds>,
): Message {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(payload));
  } catch {
    throw new ProtocolError("frame is not valid UTF-8 JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ProtocolError("frame is not a JSON object");
  }
  const record = value as Record<string, unknown>;
  const type = record.type;
  if (typeof type !== "string" || !Object.hasOwn(schemas, type)) {
    throw new ProtocolError(`unknown message type ${JSON.stringify(type)}`);
  }
  const message: Record<string, unknown> = { type };
  for (const [field, kind] of Object.entries(schemas[type])) {
    if (kind.endsWith("?") && record[field] === undefined) continue;
    const problem = checkField(record[field], kind);
    if (problem) throw new ProtocolError(`"${type}" field "${field}" ${problem}`);
    message[field] = record[field];
  }
  return message as Message;
}

function checkField(value: unknown, kind: FieldKind): string | undefined {
  if (kind === "int" || kind === "int?") {
    return Number.isSafeInteger(value) && (value as number) >= 0
      ? undefined
      : "must be a non-negative integer";
  }
  if (typeof value !== "string") return "must be a string";
  if (kind === "text") {
    return value.length <= MAX_TEXT_LENGTH ? undefined : "is too long";
  }
  if (value.length === 0 || value.length > MAX_ID_LENGTH) {
    return `must be 1 to ${MAX_ID_LENGTH} characters`;
  }
  return ID_PATTERN.test(value) ? undefined : "may hold only letters, digits, '.', '_' and '-'";
}
