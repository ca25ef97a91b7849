/**
 * Client admission per service, by the `[services.*]` rules of the relay's config: address
 * ranges allowed and denied, concurrent connections per service and per client address, and new
 * connections per second per client address (a token bucket with a one-second burst), and the
 * visitors (user and password) a service lets in.
 */

import { createHash } from "node:crypto";
import type ipaddr from "ipaddr.js";
import type { Credentials } from "../front/front.ts";
import type { AccessRule } from "./config.ts";

/** Client addresses whose rate and connection counts are tracked at most; oldest forgotten first. */
export const MAX_TRACKED_CLIENTS = 100_000;
/** Visitor credentials remembered as checked (bcrypt is slow on purpose); oldest forgotten first. */
export const MAX_CHECKED_CREDENTIALS = 1_000;

/** The verdict for one client: admitted (call `release` when it goes) or refused, with why. */
export type Admission =
  | { admitted: true; release: () => void }
  | { admitted: false; reason: string };

const UNRULED: Admission = { admitted: true, release: () => {} };

/** Applies access rules to clients as they arrive. */
export class AccessControl {
  #rules: Map<string, AccessRule>;
  #perService = new Map<string, number>();
  #perClient = new Map<string, number>(); // "service client-ip" → open connections
  #buckets = new Map<string, { tokens: number; at: number }>(); // "service client-ip"
  #checked = new Map<string, boolean>(); // SHA-256 of service, user, password → verdict

  constructor(rules: Map<string, AccessRule>) {
    this.#rules = rules;
  }

  /** Replaces the rules (on reload); counts of open connections carry over. */
  setRules(rules: Map<string, AccessRule>): void {
    this.#rules = rules;
  }

  /** Decides whether a client at `hostname` may reach `service` now. */
  admit(service: string, hostname: string): Admission {
    const rule = this.#rules.get(service) ?? this.#rules.get("*");
    if (!rule) return UNRULED; // the common case: nothing to count, nothing to allocate
    let address: ipaddr.IPv4 | ipaddr.IPv6;
    try {
      address = rule.parseAddress(hostname);
    } catch {
      return { admitted: false, reason: "its address cannot be parsed" };
    }
    const inRange = ([range, bits]: [ipaddr.IPv4 | ipaddr.IPv6, number]) =>
      range.kind() === address.kind() && address.match(range, bits);
    if (rule.deny.some(inRange)) return { admitted: false, reason: "its address is denied" };
    if (rule.allow.length > 0 && !rule.allow.some(inRange)) {
      return { admitted: false, reason: "its address is not in the allowed ranges" };
    }
    const clientKey = `${service} ${address.toString()}`;
    const serviceCount = this.#perService.get(service) ?? 0;
    if (rule.maxConnections !== undefined && serviceCount >= rule.maxConnections) {
      return {
        admitted: false,
        reason: `the service has its maximum of ${rule.maxConnections} connections`,
      };
    }
    const clientCount = this.#perClient.get(clientKey) ?? 0;
    if (rule.maxConnectionsPerClient !== undefined && clientCount >= rule.maxConnectionsPerClient) {
      return {
        admitted: false,
        reason: `its address has its maximum of ${rule.maxConnectionsPerClient} connections`,
      };
    }
    if (
      rule.maxNewPerSecondPerClient !== undefined &&
      !this.#take(clientKey, rule.maxNewPerSecondPerClient)
    ) {
      return {
        admitted: false,
        reason:
          `its address opens more than ${rule.maxNewPerSecondPerClient} connections per second`,
      };
    }
    this.#perService.set(service, serviceCount + 1);
    this.#perClient.set(clientKey, clientCount + 1);
    let released = false;
    return {
      admitted: true,
      release: () => {
        if (released) return;
        released = true;
        decrement(this.#perService, service);
        decrement(this.#perClient, clientKey);
      },
    };
  }

  /** Whether several agents may serve `service` at once, and how clients are spread. */
  groupOf(service: string): AccessRule["group"] {
    return (this.#rules.get(service) ?? this.#rules.get("*"))?.group;
  }

  /** Whether `service` lets in named visitors only (`basic_auth`). */
  hasVisitors(service: string): boolean {
    return (this.#rules.get(service) ?? this.#rules.get("*"))?.visitors !== undefined;
  }

  /**
   * Whether a service that names its visitors (`basic_auth`) lets these credentials in; true for
   * a service that names none. Verdicts are remembered, so a visitor pays bcrypt's cost once.
   */
  async visitorAllowed(service: string, credentials: Credentials | undefined): Promise<boolean> {
    const visitors = (this.#rules.get(service) ?? this.#rules.get("*"))?.visitors;
    if (!visitors) return true;
    const hash = credentials && visitors.get(credentials.user);
    if (!credentials || !hash) return false;
    const key = createHash("sha256").update(`${service}\0${credentials.user}\0${hash}\0`)
      .update(credentials.password).digest("hex");
    let verdict = this.#checked.get(key);
    if (verdict === undefined) {
      const { default: bcrypt } = await import("bcryptjs");
      verdict = await bcrypt.compare(credentials.password, hash);
      if (this.#checked.size >= MAX_CHECKED_CREDENTIALS) {
        this.#checked.delete(this.#checked.keys().next().value!);
      }
      this.#checked.set(key, verdict);
    }
    return verdict;
  }

  /** Takes a token from the client's bucket (refilled at `rate` per second, holding at most `rate`). */
  #take(key: string, rate: number): boolean {
    const now = performance.now();
    const bucket = this.#buckets.get(key) ?? { tokens: rate, at: now };
    bucket.tokens = Math.min(rate, bucket.tokens + (now - bucket.at) * rate / 1000);
    bucket.at = now;
    this.#buckets.delete(key); // re-inserted below, so the map stays in least-recent-first order
    if (this.#buckets.size >= MAX_TRACKED_CLIENTS) {
      this.#buckets.delete(this.#buckets.keys().next().value!);
    }
    this.#buckets.set(key, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }
}

function decrement(counts: Map<string, number>, key: string): void {
  const left = (counts.get(key) ?? 1) - 1;
  if (left > 0) counts.set(key, left);
  else counts.delete(key);
}
