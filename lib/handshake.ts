/**
 * The handshakes, both halves side by side and next to the proofs of lib/auth.ts:
 *
 * - control channel (C1, S1–S2): agent `hello` (its id and nonce) → relay `challenge` (the
 *   relay's nonce and proof) → agent `auth` (the agent's proof) → relay `welcome` or `error`;
 * - data channel (C3, S10): agent `data` (session and connection id) → relay `ready`, then the
 *   client's raw bytes, or `error`.
 *
 * The S-numbers refer to the steps of the connection flow in docs/flow.md.
 */

import { computeProof, randomToken, sameToken } from "./auth.ts";
import type { ControlChannel } from "./channel.ts";
import { type Conn, deadline, writeAll } from "./net.ts";
import {
  type AgentMessage,
  type AgentMessageOf,
  HANDSHAKE_TIMEOUT_MS,
  PROTOCOL_VERSION,
  ProtocolError,
  type RelayMessage,
  type RelayMessageOf,
} from "./protocol.ts";
import { decodeRelayMessage, encodeFrame } from "./message_codec.ts";
import { FrameReader } from "./frames.ts";

/**
 * Thrown when retrying cannot help: the relay refused (sent `error`) or could not prove it holds
 * the secret.
 */
export class HandshakeRefusedError extends Error {
  override name = "HandshakeRefusedError";
}

/**
 * Agent half of S1–S2: sends `hello` (asking for an early-data window of `earlyWindow` bytes, if
 * not 0), answers the relay's `challenge` with the agent's proof, and checks the relay's own
 * proof. Resolves with the relay's `welcome`. Rejects with
 * {@link HandshakeRefusedError} when the relay answers `error` or cannot prove the secret, with a
 * ProtocolError for an unexpected message, and with an Error when the relay closes meanwhile.
 *
 * @example
 * ```ts
 * import { secretKey } from "./auth.ts";
 * import { ControlChannel } from "./channel.ts";
 * import { decodeRelayMessage } from "./message_codec.ts";
 * declare const conn: Deno.Conn;
 * const channel = new ControlChannel(conn, decodeRelayMessage);
 * const welcome = await greetRelay(channel, "office", secretKey("a-long-shared-secret"), "relay:7835");
 * ```
 */
export async function greetRelay(
  channel: ControlChannel<RelayMessage>,
  agentId: string,
  key: Uint8Array,
  relayName: string,
  earlyWindow = 0,
): Promise<RelayMessageOf<"welcome">> {
  const nonce = randomToken();
  channel.send({
    type: "hello",
    version: PROTOCOL_VERSION,
    agent: agentId,
    nonce,
    ...(earlyWindow > 0 ? { early: earlyWindow } : {}),
  });
  const challenge = await expect(channel, "challenge");
  channel.send({
    type: "auth",
    proof: computeProof(key, "agent", agentId, nonce, challenge.nonce),
  });
  // The relay judges the agent's proof before the agent judges the relay's: when the secrets
  // differ, the relay's refusal is what the user sees, and it says how to fix the setup.
  const welcome = await expect(channel, "welcome");
  if (!sameToken(computeProof(key, "relay", agentId, nonce, challenge.nonce), challenge.proof)) {
    throw new HandshakeRefusedError(
      `the relay at ${relayName} could not prove it holds the secret: ` +
        "it is not the relay you meant, or its secret differs from this agent's",
    );
  }
  return welcome;
}

/** The relay's next message, which must be of type `type`; an `error` is a refusal. */
async function expect<T extends RelayMessage["type"]>(
  channel: ControlChannel<RelayMessage>,
  type: T,
): Promise<RelayMessageOf<T>> {
  const message = await channel.receive();
  if (message === null) throw new Error("the relay closed the connection during the handshake");
  if (message.type === "error") {
    throw new HandshakeRefusedError(`the relay refused: ${message.message}`);
  }
  if (message.type !== type) {
    throw new ProtocolError(`expected "${type}" from the relay, got "${message.type}"`);
  }
  return message as RelayMessageOf<T>;
}

/**
 * Relay half of S1, after the agent's `hello` was read and its version checked: sends the
 * `challenge` (the relay's nonce and proof) and waits for the agent's `auth`. Resolves "proven"
 * when the proof matches `key`, "closed" when the agent went away, or `{ refused }` with the text
 * to send back in an `error` frame. A malformed frame rejects with ProtocolError. Does not send
 * `welcome` (the relay does, once it has made the session). Deadlines are the caller's.
 *
 * @example
 * ```ts
 * import type { ControlChannel } from "./channel.ts";
 * import { deadline } from "./net.ts";
 * import type { AgentMessage, AgentMessageOf } from "./protocol.ts";
 * declare const channel: ControlChannel<AgentMessage>;
 * declare const hello: AgentMessageOf<"hello">;
 * declare const key: Uint8Array;
 * const verdict = await deadline(challengeAgent(channel, hello, key), 10_000, channel.conn, "auth");
 * ```
 */
export async function challengeAgent(
  channel: ControlChannel<AgentMessage>,
  hello: AgentMessageOf<"hello">,
  key: Uint8Array,
): Promise<"proven" | "closed" | { refused: string }> {
  const relayNonce = randomToken();
  channel.send({
    type: "challenge",
    nonce: relayNonce,
    proof: computeProof(key, "relay", hello.agent, hello.nonce, relayNonce),
  });
  const auth = await channel.receive();
  if (auth === null) return "closed";
  if (auth.type !== "auth") return { refused: `expected "auth", got "${auth.type}"` };
  const expected = computeProof(key, "agent", hello.agent, hello.nonce, relayNonce);
  if (!sameToken(expected, auth.proof)) {
    return {
      refused: `agent ${hello.agent} failed authentication: wrong secret or unknown agent ` +
        "(give agent and relay the same secret; with --config, list the agent under [agents])",
    };
  }
  return "proven";
}

/**
 * Agent half of S10: on a fresh connection to the relay, sends the `data` frame for connection id
 * `connId` of session `session` (saying that `sentEarly` of the service's bytes went early) and
 * waits (up to {@link HANDSHAKE_TIMEOUT_MS}) for `ready`. Resolves with the bytes that arrived
 * after `ready` in the same reads (`rest`: they belong to the client and must be forwarded
 * first, after the `early` bytes the relay says it sent over the control channel). Rejects when
 * the relay refuses (`error`), closes first, or the deadline passes (then `conn` is closed).
 *
 * @example
 * ```ts
 * import { writeAll } from "./net.ts";
 * declare const conn: Deno.Conn, service: Deno.Conn, session: string, connId: string;
 * const { rest } = await openDataChannel(conn, session, connId);
 * if (rest.length > 0) await writeAll(service, rest);
 * ```
 */
export async function openDataChannel(
  conn: Conn,
  session: string,
  connId: string,
  sentEarly = 0,
): Promise<{ rest: Uint8Array; early: number }> {
  const early = sentEarly > 0 ? { early: sentEarly } : {};
  await writeAll(
    conn,
    encodeFrame({ type: "data", version: PROTOCOL_VERSION, session, conn: connId, ...early }),
  );
  const reader = new FrameReader(conn);
  const payload = await deadline(
    reader.next(),
    HANDSHAKE_TIMEOUT_MS,
    conn,
    "the data channel handshake",
  );
  const answer = payload && decodeRelayMessage(payload);
  if (answer?.type !== "ready") {
    throw new Error(
      answer?.type === "error"
        ? `the relay refused the data channel: ${answer.message}`
        : "the relay closed the data channel before accepting it",
    );
  }
  return { rest: reader.takeRest(), early: answer.early ?? 0 };
}

/**
 * The `ready` frame, encoded once (the relay sends it, followed by the client's held bytes, in
 * one write).
 */
export const READY_FRAME: Uint8Array = encodeFrame({ type: "ready" });
