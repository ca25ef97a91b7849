/**
 * The certificate a TLS relay presented on a `Deno.TlsConn`, for an agent that pins the relay's
 * fingerprint and so must check it on every connection: `caCerts` adds the pinned certificate to
 * the default roots rather than replacing them, so a connection Deno accepts may have been
 * answered with any certificate a public CA signed, for any name (the pin turns name checks off).
 *
 * `Deno.TlsConn` has no public way to show the peer's certificate in Deno 2.9; its prototype keeps
 * one under a symbol described "getPeerCertificate" (what `node:tls` uses), read here.
 * `tests/tls_test.ts` fails if a Deno upgrade takes it away, and without it a pinned agent refuses
 * every connection rather than trusting one it cannot check.
 */

import { UntrustedRelayError } from "./transport.ts";

const DESCRIPTION = "getPeerCertificate";

type PeerCertificateMethod = (detailed: boolean) => { fingerprint256?: string } | null;

/**
 * The SHA-256 fingerprint (`AB:CD:…`) of the certificate `conn`'s peer presented, or undefined
 * if it presented none; throws an {@link UntrustedRelayError} (which stops the agent) if this
 * Deno cannot tell.
 */
export function peerFingerprint(conn: Deno.TlsConn): string | undefined {
  method ??= findMethod(Object.getPrototypeOf(conn));
  return method.call(conn, false)?.fingerprint256 || undefined;
}

let method: PeerCertificateMethod | undefined;

function findMethod(prototype: Record<symbol, unknown>): PeerCertificateMethod {
  const symbol = Object.getOwnPropertySymbols(prototype)
    .find((candidate) => candidate.description === DESCRIPTION);
  const found = symbol && prototype[symbol];
  if (typeof found !== "function") {
    throw new UntrustedRelayError(
      `this Deno (${Deno.version.deno}) cannot show the relay's certificate on a connection, so ` +
        "a pinned --fingerprint cannot be checked: run the agent with the Deno the Makefile pins, or " +
        "trust the relay with --ca",
    );
  }
  return found as PeerCertificateMethod;
}
