/**
 * Secrets, proofs and one-time tokens. The secret never crosses the wire: each side proves it
 * holds it with an HMAC-SHA256 over both sides' fresh nonces, with a different label per side so
 * neither proof can be replayed as the other. Comparisons take constant time.
 */

import { createHash, createHmac, timingSafeEqual } from "node:crypto";

/** Random bytes in every nonce, session id and connection id (128 bits). */
export const TOKEN_BYTES = 16;
/** Shortest secret accepted; shorter ones are too easy to guess. */
export const MIN_SECRET_LENGTH = 16;

/** Which side a proof comes from. */
export type ProofRole = "agent" | "relay";

const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));
/** Random bytes drawn from the system in batches: one connection id should not cost a syscall. */
const randomPool = new Uint8Array(64 * TOKEN_BYTES);
let randomUsed = randomPool.length;

/** A fresh unguessable token (nonce, session id, connection id): 128 random bits in hex. */
export function randomToken(): string {
  if (randomUsed === randomPool.length) {
    crypto.getRandomValues(randomPool);
    randomUsed = 0;
  }
  let token = "";
  for (let i = 0; i < TOKEN_BYTES; i++) {
    token += HEX[randomPool[randomUsed]];
    randomPool[randomUsed++] = 0; // a byte handed out is not kept
  }
  return token;
}

/**
 * The HMAC key both sides use for `secret`: its SHA-256. The relay may store only this hash
 * (`secret_sha256` in its config), so its files never hold the agent's secret itself.
 */
export function secretKey(secret: string): Uint8Array {
  return new Uint8Array(createHash("sha256").update(secret).digest());
}

/** The HMAC key from the hex SHA-256 of a secret (as `sha256sum` prints it). */
export function keyFromHex(hex: string): Uint8Array {
  return new Uint8Array(hex.match(/../g)!.map((byte) => parseInt(byte, 16)));
}

/** The proof that `role` holds the secret behind `key`, bound to this agent id and both nonces. */
export function computeProof(
  key: Uint8Array,
  role: ProofRole,
  agentId: string,
  agentNonce: string,
  relayNonce: string,
): string {
  return createHmac("sha256", key)
    .update(`porthole/1 ${role} ${agentId} ${agentNonce} ${relayNonce}`)
    .digest("hex");
}

/** Compares two proofs or tokens in constant time (for equal lengths). */
export function sameToken(expected: string, given: string): boolean {
  return sameBytes(new TextEncoder().encode(expected), new TextEncoder().encode(given));
}

/** Compares two keys in constant time (for equal lengths). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Reads the shared secret from `file` if given, else from the environment variable
 * PORTHOLE_SECRET; throws a message saying how to provide one.
 */
export async function readSecret(file: string | undefined): Promise<string> {
  let secret: string | undefined;
  if (file !== undefined) {
    try {
      secret = (await Deno.readTextFile(file)).trim();
    } catch (error) {
      throw new Error(
        `cannot read the secret file ${file}: ${(error as Error).message}`,
      );
    }
  } else {
    secret = Deno.env.get("PORTHOLE_SECRET")?.trim();
  }
  if (!secret) {
    throw new Error(
      "no secret: pass --secret-file FILE or set PORTHOLE_SECRET " +
        "(make one with: openssl rand -hex 32 > secret)",
    );
  }
  if (secret.length < MIN_SECRET_LENGTH) {
    throw new Error(
      `the secret is ${secret.length} characters; use at least ${MIN_SECRET_LENGTH} ` +
        "(make one with: openssl rand -hex 32 > secret)",
    );
  }
  return secret;
}
