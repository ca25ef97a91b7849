/**
 * TLS between agent and relay, the default. The relay serves its certificate
 * (lib/transport/certificate.ts) on `node:tls` sockets (lib/transport/node_tls.ts); the agent
 * trusts the relay by pinned SHA-256 fingerprint, by a CA file, or by the system's roots.
 */

import { isIP } from "node:net";
import { Duplex } from "node:stream";
import tls from "node:tls";
import { createLogger } from "../log.ts";
import { closeQuietly, type Conn, deadline } from "../net.ts";
import { formatHostPort, type HostPort } from "../address.ts";
import { tlsProblem } from "../tls_errors.ts";
import { type CertifiedKey, fingerprintOf, normalizeFingerprint, toPem } from "./certificate.ts";
import { canCollectYoungGeneration, listenTls } from "./node_tls.ts";
import { peerFingerprint } from "./peer_certificate.ts";
import {
  type AgentTransport,
  direct,
  type RelayDialer,
  type Route,
  UntrustedRelayError,
} from "./transport.ts";

/** Silence allowed while fetching a pinned relay's certificate. */
export const FETCH_CERT_TIMEOUT_MS = 5_000;

/** How an agent decides to trust the relay. */
export type RelayTrust =
  | { kind: "fingerprint"; sha256: string }
  | { kind: "ca"; pem: string }
  | { kind: "system" };

const NOT_TLS_HINT =
  " (not TLS: is the agent running with --insecure? use TLS on both sides, or --insecure on both)";

/** The relay's agent port over TLS with `certified`. */
export function tlsTransport(certified: CertifiedKey): AgentTransport {
  return {
    name: "TLS",
    listen(address) {
      if (!canCollectYoungGeneration) {
        createLogger("relay").warn(
          "started without V8's --expose-gc: receiving from agents over TLS will cost about 2.5 " +
            "times the CPU; start the relay with `deno task relay` or the flags in lib/launch.ts",
        );
      }
      return listenTls(address, certified);
    },
    hint: (error) => tlsProblem(error) === "not TLS" ? NOT_TLS_HINT : "",
  };
}

/**
 * Opens TLS connections to the relay as `trust` requires, over TCP connections `route` opens.
 * With a pinned fingerprint, the relay's certificate is fetched once (by the same route), checked
 * against the pin, and from then on given as the root to chain to; and each connection's
 * certificate is checked against the pin again (lib/transport/peer_certificate.ts says why).
 */
export class TlsDialer implements RelayDialer {
  readonly relay: HostPort;
  #trust: RelayTrust;
  #route: Route;
  #pinnedPem?: string;

  constructor(relay: HostPort, trust: RelayTrust, route: Route = direct) {
    this.relay = relay;
    this.#trust = trust;
    this.#route = route;
  }

  /** A TLS connection to the relay, failing after `timeoutMs`. */
  async dial(timeoutMs: number): Promise<Conn> {
    const options: Deno.StartTlsOptions = { hostname: this.relay.hostname };
    if (this.#trust.kind === "ca") options.caCerts = [this.#trust.pem];
    if (this.#trust.kind === "fingerprint") {
      this.#pinnedPem ??= await this.#fetchPinned(this.#trust.sha256);
      options.caCerts = [this.#pinnedPem];
      options.unsafelyDisableHostnameVerification = true; // the pin is the identity
    }
    const conn = await Deno.startTls(await this.#route.open(this.relay, timeoutMs), options);
    try {
      await deadline(conn.handshake(), timeoutMs, conn, "the TLS handshake");
      if (this.#trust.kind === "fingerprint") {
        this.#checkPin(peerFingerprint(conn) ?? "none", this.#trust.sha256);
      }
    } catch (error) {
      closeQuietly(conn);
      throw this.#explain(error as Error);
    }
    return conn;
  }

  /**
   * Throws unless `actual` is the `expected` fingerprint: on every connection, since Deno also
   * accepts a certificate its default roots trust, for any name.
   */
  #checkPin(actual: string, expected: string): void {
    if (normalizeFingerprint(actual) === normalizeFingerprint(expected)) return;
    throw new UntrustedRelayError(
      `the relay at ${formatHostPort(this.relay)} presented a certificate with fingerprint ` +
        `${actual}, not the pinned ${expected}: check --fingerprint against what the relay ` +
        "printed at start (or someone is intercepting the connection)",
    );
  }

  /** Fetches the relay's certificate without trusting it, and keeps it only if it matches. */
  async #fetchPinned(expected: string): Promise<string> {
    const tcp = await this.#route.open(this.relay, FETCH_CERT_TIMEOUT_MS);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const der = await new Promise<Uint8Array>((resolve, reject) => {
      const socket = tls.connect({
        socket: Duplex.fromWeb({ readable: tcp.readable, writable: tcp.writable }),
        ...(isIP(this.relay.hostname) ? {} : { servername: this.relay.hostname }),
        rejectUnauthorized: false,
      }, () => {
        resolve(new Uint8Array(socket.getPeerCertificate().raw));
        socket.end(); // with close_notify, so the relay sees a clean close
      });
      socket.on("error", (error) => reject(this.#explain(error)));
      timer = setTimeout(() => socket.destroy(new Error("timed out")), FETCH_CERT_TIMEOUT_MS);
    }).finally(() => clearTimeout(timer));
    const pem = toPem(der, "CERTIFICATE");
    this.#checkPin(fingerprintOf(pem), expected);
    return pem;
  }

  /** Turns a TLS failure into a message that says what to change. */
  #explain(error: Error): Error {
    const where = `the relay at ${formatHostPort(this.relay)}`;
    const problem = tlsProblem(error);
    if (problem === "untrusted certificate") {
      return new UntrustedRelayError(
        `${where} presented a certificate this agent does not trust (${error.message}): pass ` +
          "--fingerprint with the fingerprint the relay prints at start, or --ca with the CA " +
          "that signed its certificate",
      );
    }
    if (problem === "not TLS") {
      return new UntrustedRelayError(
        `${where} did not answer with TLS (${error.message}): it probably runs with --insecure; ` +
          "use TLS on both sides (recommended) or --insecure on both",
      );
    }
    return error;
  }
}
