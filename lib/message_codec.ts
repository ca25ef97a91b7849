/**
 * Messages to frames and back: serialising a message of lib/protocol.ts' tables, and decoding a
 * frame payload into a message whose every field has been checked against its table, so that
 * nothing past here sees a field of the wrong kind or size.
 */

import {
  AGENT_MESSAGES,
  type AgentMessage,
  EARLY_CHUNK_BYTES,
  type FieldKind,
  type Fields,
  MAX_FRAME_BYTES,
  MAX_ID_LENGTH,
  MAX_LIST_LENGTH,
  MAX_TEXT_LENGTH,
  type Message,
  ProtocolError,
  RELAY_MESSAGES,
  type RelayMessage,
  SERVICE_KINDS,
} from "./protocol.ts";

const ID_PATTERN = /^[A-Za-z0-9._-]+$/;

const encoder = new TextEncoder();
const asBase64 = (_key: string, value: unknown) =>
  value instanceof Uint8Array ? value.toBase64() : value;
/** Length of the base64 text of {@link EARLY_CHUNK_BYTES}. */
const MAX_BASE64_LENGTH = Math.ceil(EARLY_CHUNK_BYTES / 3) * 4;
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Serialises a message into one length-prefixed frame (`bytes` fields as base64). */
export function encodeFrame(message: Message): Uint8Array {
  const payload = encoder.encode(JSON.stringify(message, asBase64));
  if (payload.length > MAX_FRAME_BYTES) {
    throw new ProtocolError(
      `frame of ${payload.length} bytes exceeds the limit of ${MAX_FRAME_BYTES}`,
    );
  }
  const frame = new Uint8Array(4 + payload.length);
  new DataView(frame.buffer).setUint32(0, payload.length);
  frame.set(payload, 4);
  return frame;
}

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
  schemas: Record<string, Fields>,
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
    message[field] = kind === "bytes" ? fromBase64(record[field] as string) : record[field];
  }
  return message as Message;
}

function fromBase64(text: string): Uint8Array {
  try {
    return Uint8Array.fromBase64(text);
  } catch {
    throw new ProtocolError("a bytes field is not valid base64");
  }
}

function checkField(value: unknown, kind: FieldKind): string | undefined {
  if (kind === "texts?") {
    if (!Array.isArray(value) || value.length > MAX_LIST_LENGTH) {
      return `must be a list of at most ${MAX_LIST_LENGTH} strings`;
    }
    return value.map((item) => checkField(item, "text")).find(Boolean);
  }
  if (kind === "kind?") {
    return (SERVICE_KINDS as readonly unknown[]).includes(value)
      ? undefined
      : `must be one of ${SERVICE_KINDS.join(", ")}`;
  }
  if (kind === "int" || kind === "int?") {
    return Number.isSafeInteger(value) && (value as number) >= 0
      ? undefined
      : "must be a non-negative integer";
  }
  if (kind === "bool") return typeof value === "boolean" ? undefined : "must be true or false";
  if (typeof value !== "string") return "must be a string";
  if (kind === "bytes") {
    return value.length <= MAX_BASE64_LENGTH
      ? undefined
      : `must be at most ${EARLY_CHUNK_BYTES} bytes`;
  }
  if (kind === "text" || kind === "text?") {
    return value.length <= MAX_TEXT_LENGTH ? undefined : "is too long";
  }
  if (value.length === 0 || value.length > MAX_ID_LENGTH) {
    return `must be 1 to ${MAX_ID_LENGTH} characters`;
  }
  return ID_PATTERN.test(value) ? undefined : "may hold only letters, digits, '.', '_' and '-'";
}
