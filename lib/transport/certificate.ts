/**
 * The relay's certificate: the one it was given (`--cert`/`--key`), or one it made itself on
 * first start and keeps in its state directory; and fingerprints, as the relay prints them and
 * an agent pins them.
 */

import { X509Certificate } from "node:crypto";
import { join } from "node:path";

/** Name of the generated certificate and key files in the relay's state directory. */
export const CERT_FILE = "relay-cert.pem";
/** The generated key's file; written with mode 0600. */
export const KEY_FILE = "relay-key.pem";
/** Validity of a generated certificate. */
export const GENERATED_CERT_DAYS = 3650;

/** A certificate and its private key, PEM-encoded. */
export interface CertifiedKey {
  cert: string;
  key: string;
}

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
export function toPem(der: Uint8Array, label: string): string {
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
