/**
 * What a TLS failure means, read from its error. Deno's and `node:tls`' TLS errors carry no codes
 * for these cases, only texts; this is the one place that reads them, so a Deno upgrade that
 * rewords one is mended here.
 */

/** The kinds of TLS failure that porthole explains to the user. */
export type TlsProblem =
  /** The peer's certificate is not trusted (unknown issuer, wrong name, expired, bad signature). */
  | "untrusted certificate"
  /** The peer does not speak TLS (it runs with `--insecure`). */
  | "not TLS"
  /** The peer closed without TLS close_notify. */
  | "abrupt close";

const PATTERNS: [RegExp, TlsProblem][] = [
  [/certificate|UnknownIssuer|NotValidForName|Expired|BadSignature/i, "untrusted certificate"],
  [/corrupt message|InvalidContentType|wrong version|packet length/i, "not TLS"],
  [/without sending TLS close_notify/, "abrupt close"],
];

/** The TLS problem `error` reports, if it is one of {@link TlsProblem}. */
export function tlsProblem(error: unknown): TlsProblem | undefined {
  if (!(error instanceof Error)) return undefined;
  return PATTERNS.find(([pattern]) => pattern.test(error.message))?.[1];
}
