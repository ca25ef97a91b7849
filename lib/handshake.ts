// TEMPORARY stand-in until the shape-protocol branch lands (its lib/handshake.ts replaces this).
import { computeProof, randomToken, sameToken } from "./auth.ts";
import type { ControlChannel } from "./channel.ts";
import { type Conn, deadline, writeAll } from "./net.ts";
import {
  type AgentMessage,
  decodeRelayMessage,
  encodeFrame,
  HANDSHAKE_TIMEOUT_MS,
  PROTOCOL_VERSION,
  ProtocolError,
  type RelayMessage,
} from "./protocol.ts";
import { FrameReader } from "./frames.ts";

export class HandshakeRefusedError extends Error {
  override name = "HandshakeRefusedError";
}
type Of<T extends RelayMessage["type"]> = Extract<RelayMessage, { type: T }>;

export const READY_FRAME = encodeFrame({ type: "ready" });

async function expect<T extends RelayMessage["type"]>(
  channel: ControlChannel<RelayMessage>,
  type: T,
): Promise<Of<T>> {
  const message = await channel.receive();
  if (message === null) throw new Error("the relay closed the connection during the handshake");
  if (message.type === "error") {
    throw new HandshakeRefusedError(`the relay refused: ${message.message}`);
  }
  if (message.type !== type) {
    throw new ProtocolError(`expected "${type}" from the relay, got "${message.type}"`);
  }
  return message as Of<T>;
}

export async function greetRelay(
  channel: ControlChannel<RelayMessage>,
  agentId: string,
  key: Uint8Array,
  relayName: string,
): Promise<Of<"welcome">> {
  const nonce = randomToken();
  channel.send({ type: "hello", version: PROTOCOL_VERSION, agent: agentId, nonce });
  const challenge = await expect(channel, "challenge");
  channel.send({
    type: "auth",
    proof: computeProof(key, "agent", agentId, nonce, challenge.nonce),
  });
  const welcome = await expect(channel, "welcome");
  const relayProof = computeProof(key, "relay", agentId, nonce, challenge.nonce);
  if (!sameToken(relayProof, challenge.proof)) {
    throw new HandshakeRefusedError(
      `the relay at ${relayName} could not prove it holds the secret: ` +
        "it is not the relay you meant, or its secret differs from this agent's",
    );
  }
  return welcome;
}

export async function challengeAgent(
  channel: ControlChannel<AgentMessage>,
  hello: Extract<AgentMessage, { type: "hello" }>,
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

export async function openDataChannel(
  conn: Conn,
  session: string,
  connId: string,
): Promise<Uint8Array> {
  await writeAll(
    conn,
    encodeFrame({ type: "data", version: PROTOCOL_VERSION, session, conn: connId }),
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
  return reader.takeRest();
}
