/**
 * The relays an agent attaches to, from its flags: each `--relay` (repeatable), its paths with
 * `--proxy` or the environment's proxy, trusted by `--fingerprint`, `--ca`, the system's roots,
 * or nothing (`--insecure`). A relay's name that resolves to several addresses (DNS with several
 * A records, or AAAA records for a name without A records, for the relays behind one name) is one
 * relay per address, each kept, with the name still what TLS checks; through a proxy the proxy
 * resolves the name, so it stays one. Names are resolved again every `--relay-dns-refresh`
 * seconds: a relay added to the answer is attached to, one removed from it is left.
 */

import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { readFlagFile, UsageError } from "../cli.ts";
import { createLogger } from "../log.ts";
import type { RelayTrust } from "../transport/tls.ts";
import type { Agent } from "./agent.ts";
import type { AgentRelay } from "./relay_set.ts";
import type { Route } from "../transport/transport.ts";
import { parseRelayAddress, proxyRoute, type RelayAddress, relayPaths } from "./relay_paths.ts";

/** The flags the relays are read from. */
export interface RelayFlags {
  relay: string[];
  proxy?: string;
  fingerprint?: string;
  ca?: string;
  insecure: boolean;
}

const log = createLogger("agent");

/** Default pause between resolving the relays' names again (`--relay-dns-refresh`). */
export const RELAY_DNS_REFRESH_MS = 60_000;

/** One `--relay`, parsed: how it is reached and trusted. */
export interface RelaySpec {
  /** As given on the command line, for logs. */
  text: string;
  address: RelayAddress;
  proxy?: Route;
  trust?: RelayTrust;
}

/** An {@link AgentRelay} and the `--relay` it comes from. */
export interface ResolvedRelay extends AgentRelay {
  from: string;
}

/** Each `--relay`, parsed and checked, with the trust the flags give; throws a UsageError. */
export async function relaySpecs(flags: RelayFlags): Promise<RelaySpec[]> {
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
  return flags.relay.map((text) => {
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
    return { text, address, proxy, trust };
  });
}

/**
 * Every relay to attach to now. A name with several addresses is one relay per address; one with
 * a single address is dialled by name, unless `previous` (the last answer) already has a relay
 * at that address, which is kept. A name that does not resolve now keeps its `previous` relays
 * (none at start: then it is dialled by name, where the failure shows and is retried).
 * `addressesOf` looks the names up (undefined: it does not resolve now).
 */
export async function resolveRelays(
  specs: readonly RelaySpec[],
  previous: readonly ResolvedRelay[] = [],
  addressesOf: (hostname: string) => Promise<string[] | undefined> = relayAddressesOf,
): Promise<ResolvedRelay[]> {
  const relays = [];
  for (const { text, address, proxy, trust } of specs) {
    const before = previous.filter(({ from }) => from === text);
    const byName = { from: text, name: text, paths: relayPaths({ address, proxy, trust }) };
    const addresses = proxy ? [] : await addressesOf(address.relay.hostname);
    const atEach = (addresses ?? []).map((at) => ({
      from: text,
      name: `${text} (${at})`,
      paths: relayPaths({ address, trust, at }),
    }));
    if (addresses === undefined) relays.push(...before.length > 0 ? before : [byName]);
    else if (atEach.length >= 2) {
      if (previous.length === 0) {
        log.info(`--relay ${text}: the name has ${atEach.length} addresses; attaching to each`);
      }
      relays.push(...atEach);
    } else relays.push(before.find(({ name }) => name === atEach[0]?.name) ?? byName);
  }
  return relays;
}

/**
 * Resolves the relays' names again every `intervalMs` until `agent.done` settles, and gives the
 * agent the relays of each changed answer (logging what came and went).
 */
export function keepRelaysResolved(
  agent: Pick<Agent, "setRelays" | "done">,
  specs: readonly RelaySpec[],
  relays: readonly ResolvedRelay[],
  intervalMs: number,
): void {
  let current = relays;
  let resolving = false;
  const timer = setInterval(async () => {
    if (resolving) return;
    resolving = true;
    try {
      const next = await resolveRelays(specs, current);
      const names = (list: readonly ResolvedRelay[]) => new Set(list.map(({ name }) => name));
      const added = [...names(next).difference(names(current))];
      const gone = [...names(current).difference(names(next))];
      if (added.length === 0 && gone.length === 0) return;
      for (const name of added) log.info(`relay ${name}: in the DNS answer now; attaching`);
      for (const name of gone) {
        const byName = specs.some(({ text }) => text === name); // the name had one address
        log.info(
          byName
            ? `relay ${name}: the name has several addresses now; attaching to each instead`
            : `relay ${name}: no longer in the DNS answer; leaving it`,
        );
      }
      current = next;
      agent.setRelays(next);
    } finally {
      resolving = false;
    }
  }, intervalMs);
  Deno.unrefTimer(timer);
  agent.done.finally(() => clearInterval(timer)).catch(() => {});
}

/**
 * The addresses of the relays behind `hostname`: its IPv4 addresses, or its IPv6 ones if it has
 * none (a name with one address of each family is one relay with two ways to it, not two relays).
 * None when it is an address; undefined when it does not resolve now.
 */
async function relayAddressesOf(hostname: string): Promise<string[] | undefined> {
  if (isIP(hostname)) return [];
  try {
    const found = await lookup(hostname, { all: true });
    const family = found.some((entry) => entry.family === 4) ? 4 : 6;
    return [...new Set(found.filter((entry) => entry.family === family).map((e) => e.address))];
  } catch {
    return undefined;
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
