/**
 * The relays an agent attaches to, from its flags: each `--relay` (repeatable), its paths with
 * `--proxy` or the environment's proxy, trusted by `--fingerprint`, `--ca`, the system's roots,
 * or nothing (`--insecure`). A relay's name that resolves to several addresses (DNS with several
 * A records, or AAAA records for a name without A records, for the relays behind one name) is one
 * relay per address, each kept, with the name still what TLS checks; through a proxy the proxy
 * resolves the name, so it stays one.
 */

import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { readFlagFile, UsageError } from "../cli.ts";
import { createLogger } from "../log.ts";
import type { RelayTrust } from "../transport/tls.ts";
import { parseRelayAddress, proxyRoute, type RelayPath, relayPaths } from "./relay_paths.ts";

/** The flags the relays are read from. */
export interface RelayFlags {
  relay: string[];
  proxy?: string;
  fingerprint?: string;
  ca?: string;
  insecure: boolean;
}

const log = createLogger("agent");

/** Every relay to attach to: its name for logs, and its paths, best first. */
export async function relaysFromFlags(
  flags: RelayFlags,
): Promise<{ name: string; paths: RelayPath[] }[]> {
  if (flags.relay.length === 0) {
    throw new UsageError("--relay ADDRESS is required (HOST:PORT or wss://HOST/PATH)");
  }
  const chosen = [
    flags.fingerprint && "--fingerprint",
    flags.ca && "--ca",
    flags.insecure && "--insecure",
  ].filter(Boolean);
  if (chosen.length > 1) throw new UsageError(`${chosen.join(" and ")} exclude each other`);
  const trust = flags.insecure ? undefined : await relayTrust(flags);
  if (flags.insecure) {
    log.warn(
      "TLS is off (--insecure): traffic to the relay can be read and changed by anyone on the path",
    );
  }
  const relays = [];
  for (const text of flags.relay) {
    let address, proxy;
    try {
      address = parseRelayAddress(text);
      proxy = proxyRoute(flags.proxy, address.relay);
    } catch (error) {
      throw new UsageError(`--relay: ${(error as Error).message}`);
    }
    if (address.plain && !flags.insecure) {
      throw new UsageError(
        "--relay ws:// is not encrypted: use wss://, or add --insecure to mean it",
      );
    }
    if (flags.insecure && address.transport === "websocket" && !address.plain) {
      throw new UsageError("--insecure turns TLS off, so the relay is ws://HOST/PATH, not wss://");
    }
    const addresses = proxy ? [] : await addressesOf(address.relay.hostname);
    if (addresses.length < 2) {
      relays.push({ name: text, paths: relayPaths({ address, proxy, trust }) });
      continue;
    }
    log.info(`--relay ${text}: the name has ${addresses.length} addresses; attaching to each`);
    for (const at of addresses) {
      relays.push({ name: `${text} (${at})`, paths: relayPaths({ address, trust, at }) });
    }
  }
  return relays;
}

/**
 * The addresses of the relays behind `hostname`: its IPv4 addresses, or its IPv6 ones if it has
 * none (a name with one address of each family is one relay with two ways to it, not two relays).
 * None when it is an address, or does not resolve now.
 */
async function addressesOf(hostname: string): Promise<string[]> {
  if (isIP(hostname)) return [];
  try {
    const found = await lookup(hostname, { all: true });
    const family = found.some((entry) => entry.family === 4) ? 4 : 6;
    return [...new Set(found.filter((entry) => entry.family === family).map((e) => e.address))];
  } catch {
    return []; // dialled by name, so the failure shows, and is retried, there
  }
}

/** How the relay's certificate is checked: by --fingerprint, --ca, or the system's roots. */
async function relayTrust(flags: { fingerprint?: string; ca?: string }): Promise<RelayTrust> {
  if (flags.fingerprint) {
    if (!/^([0-9a-f]{2}:?){31}[0-9a-f]{2}$/i.test(flags.fingerprint)) {
      throw new UsageError(
        `--fingerprint "${flags.fingerprint}" is not a SHA-256 fingerprint (64 hex digits, colons optional)`,
      );
    }
    return { kind: "fingerprint", sha256: flags.fingerprint };
  }
  if (flags.ca) return { kind: "ca", pem: await readFlagFile(flags.ca, "--ca") };
  return { kind: "system" };
}
