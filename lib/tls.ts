/**
 * TLS for the agent↔relay channels. The relay serves a certificate it was given (`--cert`/`--key`)
 * or one it made itself on first start and keeps in its state directory. The agent trusts the
 * relay by pinned SHA-256 fingerprint, by a CA file, or by the system's roots; `--insecure` on
 * both sides turns TLS off.
 */

import { X509Certificate } from "node:crypto";
import { join } from "node:path";
import tls from "node:tls";
import {
  closeQuietly,
  deadline,
  dial,
  formatHostPort,
  type HostPort,
  type Listener,
} from "./net.ts";
import { listenTls } from "./node_tls.ts";

/** Name of the generated certificate and key files in the relay's state directory. */
export const CERT_FILE = "relay-cert.pem";
/** The generated key's file; written with mode 0600. */
export const KEY_FILE = "relay-key.pem";
/** Silence allowed while fetching a pinned relay's certificate. */
export const FETCH_CERT_TIMEOUT_MS = 5_000;
/** Validity of a generated certificate. */
export const GENERATED_CERT_DAYS = 3650;

/** A certificate and its private key, PEM-encoded. */
export interface CertifiedKey {
  cert: string;
  key: string;
}

/** How an agent decides to trust the relay. */
export type RelayTrust =
  | { kind: "fingerprint"; sha256: string }
  | { kind: "ca"; pem: string }
  | { kind: "system" }
  | { kind: "insecure" };

/** The SHA-256 fingerprint of a PEM certificate, as `AB:CD:…` (the form `openssl` prints). */
export function fingerprintOf(certPem: string): string {
  return new X509Certificate(certPem).fingerprint256;
}

/** Normalises a fingerprint as a user may paste it (any case, with or without colons). */
export function normalizeFingerprint(text: string): string {
  return text.replaceAll(":", "").toLowerCase();
}

/** The default state directory: `$XDG_STATE_HOME/porthole` or `~/.local/state/porthole`. */
export function defaultStateDir(): string {
  const base = Deno.env.get("XDG_STATE_HOME") ??
    join(Deno.env.get("HOME") ?? ".", ".local", "state");
  return join(base, "porthole");
}

/**
 * Loads the relay's generated certificate from `stateDir`, creating a key and a self-signed
 * certificate there (key mode 0600) if there is none yet.
 */
export async function loadOrCreateCertificate(
  stateDir: string,
): Promise<CertifiedKey & { created: boolean }> {
  const certPath = join(stateDir, CERT_FILE);
  const keyPath = join(stateDir, KEY_FILE);
  try {
    return {
      cert: await Deno.readTextFile(certPath),
      key: await Deno.readTextFile(keyPath),
      created: false,
    };
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  const made = await createSelfSigned();
  await Deno.mkdir(stateDir, { recursive: true, mode: 0o700 });
  await Deno.writeTextFile(keyPath, made.key, { mode: 0o600 });
  await Deno.writeTextFile(certPath, made.cert);
  return { ...made, created: true };
}

/** PEM text for DER bytes (`label`: "CERTIFICATE", "PRIVATE KEY"). */
function toPem(der: Uint8Array, label: string): string {
  const base64 = btoa(String.fromCharCode(...der));
  return `-----BEGIN ${label}-----\n${
    base64.match(/.{1,64}/g)!.join("\n")
  }\n-----END ${label}-----\n`;
}

// The X.509 module is loaded only to make a certificate: it costs a relay or agent that never
// makes one several MiB of memory.

async function createSelfSigned(): Promise<CertifiedKey> {
  const x509 = await import("@peculiar/x509");
  const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = await crypto.subtle.generateKey(algorithm, true, ["sign", "verify"]);
  const serial = crypto.getRandomValues(new Uint8Array(16));
  serial[0] &= 0x7f; // a positive serial number
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Array.from(serial, (b) => b.toString(16).padStart(2, "0")).join(""),
    name: "CN=porthole relay",
    notBefore: new Date(now - 24 * 3600_000),
    notAfter: new Date(now + GENERATED_CERT_DAYS * 24 * 3600_000),
    keys,
    signingAlgorithm: algorithm,
    extensions: [new x509.BasicConstraintsExtension(false, undefined, true)],
  }, crypto);
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
  return {
    cert: cert.toString("pem"),
    key: toPem(new Uint8Array(pkcs8), "PRIVATE KEY"),
  };
}

/** The relay's agent listener: TLS with `certified`, or plain TCP when it is undefined. */
export async function listenForAgents(
  address: HostPort,
  certified: CertifiedKey | undefined,
): Promise<Listener> {
  return certified
    ? await listenTls(address, certified)
    : Deno.listen({ hostname: address.hostname, port: address.port });
}

/** True if a TLS error says the peer does not speak TLS (it runs with `--insecure`). */
export function peerSpeaksNoTls(error: Error): boolean {
  return /corrupt message|InvalidContentType|wrong version|packet length/i.test(error.message);
}

/** Thrown when the relay's certificate is not the one the agent trusts. */
export class UntrustedRelayError extends Error {
  override name = "UntrustedRelayError";
}

/**
 * Opens connections to the relay as `trust` requires. With a pinned fingerprint, the relay's
 * certificate is fetched once, checked against the pin, and from then on used as the only root
 * the connection may chain to.
 */
export class RelayDialer {
  readonly relay: HostPort;
  #trust: RelayTrust;
  #pinnedPem?: string;

  constructor(relay: HostPort, trust: RelayTrust) {
    this.relay = relay;
    this.#trust = trust;
  }

  /** A connection to the relay (TLS unless insecure), failing after `timeoutMs`. */
  async dial(timeoutMs: number): Promise<Deno.Conn> {
    const options: Deno.StartTlsOptions = { hostname: this.relay.hostname };
    if (this.#trust.kind === "ca") options.caCerts = [this.#trust.pem];
    if (this.#trust.kind === "fingerprint") {
      this.#pinnedPem ??= await this.#fetchPinned(this.#trust.sha256);
      options.caCerts = [this.#pinnedPem];
      options.unsafelyDisableHostnameVerification = true; // the pin is the identity
    }
    const tcp = await dial(this.relay, timeoutMs);
    if (this.#trust.kind === "insecure") return tcp;
    const conn = await Deno.startTls(tcp, options);
    try {
      await deadline(conn.handshake(), timeoutMs, conn, "the TLS handshake");
    } catch (error) {
      closeQuietly(conn);
      throw this.#explain(error as Error);
    }
    return conn;
  }

  /** Fetches the relay's certificate without trusting it, and keeps it only if it matches. */
  async #fetchPinned(expected: string): Promise<string> {
    const der = await new Promise<Uint8Array>((resolve, reject) => {
      const socket = tls.connect({
        host: this.relay.hostname,
        port: this.relay.port,
        rejectUnauthorized: false,
      }, () => {
        resolve(new Uint8Array(socket.getPeerCertificate().raw));
        socket.end(); // with close_notify, so the relay sees a clean close
      });
      socket.on("error", (error) => reject(this.#explain(error)));
      socket.setTimeout(FETCH_CERT_TIMEOUT_MS, () => socket.destroy(new Error("timed out")));
    });
    const pem = toPem(der, "CERTIFICATE");
    const actual = fingerprintOf(pem);
    if (normalizeFingerprint(actual) !== normalizeFingerprint(expected)) {
      throw new UntrustedRelayError(
        `the relay at ${formatHostPort(this.relay)} presented a certificate with fingerprint ` +
          `${actual}, not the pinned ${expected}: check --fingerprint against what the relay ` +
          "printed at start (or someone is intercepting the connection)",
      );
    }
    return pem;
  }

  /** Turns a TLS failure into a message that says what to change. */
  #explain(error: Error): Error {
    const where = `the relay at ${formatHostPort(this.relay)}`;
    const text = error.message;
    if (/certificate|UnknownIssuer|NotValidForName|Expired|BadSignature/i.test(text)) {
      return new UntrustedRelayError(
        `${where} presented a certificate this agent does not trust (${text}): pass ` +
          "--fingerprint with the fingerprint the relay prints at start, or --ca with the CA " +
          "that signed its certificate",
      );
    }
    if (peerSpeaksNoTls(error)) {
      return new UntrustedRelayError(
        `${where} did not answer with TLS (${text}): it probably runs with --insecure; ` +
          "use TLS on both sides (recommended) or --insecure on both",
      );
    }
    return error;
  }
}
