/**
 * What both sides of SOCKS5 (RFC 1928, RFC 1929) share: the version byte, the methods and the
 * reply codes. The relay's proxy front is a SOCKS5 server (lib/front/socks.ts); the agent is a
 * client of the proxy it is told to use (lib/transport/socks5_proxy.ts).
 */

/** The version byte that starts every SOCKS5 message. */
export const SOCKS_VERSION = 5;

/** Authentication methods (RFC 1928 §3). */
export enum SocksMethod {
  None = 0,
  UserPassword = 2,
  NoneAcceptable = 0xff,
}

/** Reply codes (RFC 1928 §6). */
export enum SocksReply {
  Succeeded = 0,
  GeneralFailure = 1,
  NotAllowed = 2,
  NetworkUnreachable = 3,
  HostUnreachable = 4,
  ConnectionRefused = 5,
  TtlExpired = 6,
  CommandNotSupported = 7,
  AddressTypeNotSupported = 8,
}

/**
 * What a reply code means, for messages.
 *
 * @example
 * ```ts
 * describeSocksReply(SocksReply.NotAllowed); // "connection not allowed by ruleset"
 * ```
 */
export function describeSocksReply(code: number): string {
  return [
    "succeeded",
    "general SOCKS server failure",
    "connection not allowed by ruleset",
    "network unreachable",
    "host unreachable",
    "connection refused",
    "TTL expired",
    "command not supported",
    "address type not supported",
  ][code] ?? `reply code ${code}`;
}
