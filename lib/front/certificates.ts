/**
 * Where the HTTPS front gets the certificate it terminates a server name with. Today from files
 * (`--https-cert`/`--https-key`, re-read on SIGHUP); automatic certificates (ACME) would be
 * another provider of the same interface.
 */

import { X509Certificate } from "node:crypto";
import type { CertifiedKey } from "../transport/certificate.ts";

/** The certificates the HTTPS front can terminate with. */
export interface CertificateProvider {
  /** The certificate (with its key) for `serverName`, or undefined if none covers it. */
  certificateFor(serverName: string): CertifiedKey | undefined;
}

/**
 * Certificates given as PEM files, each covering the DNS names of its subjectAltName (a wildcard
 * `*.example.com` covers one label under it); an exact name wins over a wildcard, and the first
 * certificate given over a later one.
 */
export class CertificateFiles implements CertificateProvider {
  #exact = new Map<string, CertifiedKey>();
  #wildcard = new Map<string, CertifiedKey>(); // ".example.com" → its certificate

  /** Indexes `certificates` by their names; throws naming one that has none. */
  constructor(certificates: CertifiedKey[]) {
    for (const certified of certificates) {
      const certificate = new X509Certificate(certified.cert);
      const names = (certificate.subjectAltName ?? "").split(", ")
        .filter((entry) => entry.startsWith("DNS:")).map((entry) => entry.slice(4).toLowerCase());
      if (names.length === 0) {
        throw new Error(
          `the HTTPS certificate for ${certificate.subject} names no DNS name (subjectAltName)`,
        );
      }
      for (const name of names) {
        const [index, key] = name.startsWith("*.")
          ? [this.#wildcard, name.slice(1)]
          : [this.#exact, name];
        if (!index.has(key)) index.set(key, certified);
      }
    }
  }

  certificateFor(serverName: string): CertifiedKey | undefined {
    const name = serverName.toLowerCase();
    return this.#exact.get(name) ?? this.#wildcard.get(name.slice(name.indexOf(".")));
  }
}
