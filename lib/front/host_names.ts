/**
 * The names services answer to on a front that routes by name: `ID.DOMAIN`, the names their
 * agents claimed (as the relay's config allows), and on the proxy front the bare id too. A
 * service that goes offline keeps its own names while the relay runs (unless it comes back as
 * another kind), so its clients are told it is offline rather than unknown; its claimed names are
 * freed.
 */

import type { ServiceKind } from "../protocol.ts";
import type { PublishRequest } from "./front.ts";

/** How a front's names are made. */
export interface HostNamesOptions {
  /** The domain of `ID.DOMAIN` (none: no such name). */
  domain?: string;
  /** The one kind of service this front carries (default: every kind). */
  kind?: ServiceKind;
  /** Whether the bare service id is a name too (the proxy front's targets). */
  bareIds?: boolean;
}

/** Host name → service, for one front. */
export class HostNames {
  readonly #options: HostNamesOptions;
  #services = new Map<string, string>(); // host name → service id
  #claimed = new Map<string, string[]>(); // service id → its claimed names

  constructor(options: HostNamesOptions) {
    this.#options = { ...options, domain: options.domain?.toLowerCase() };
  }

  /**
   * Gives a service its names (and takes them away from one of another kind): resolves with its
   * own name (`ID.DOMAIN`, else the id), or why a claimed name cannot be its, or undefined when
   * this front does not carry its kind.
   */
  publish(
    { service, kind, hosts = [] }: PublishRequest,
  ): { host: string } | { reason: string } | undefined {
    for (const [host, id] of this.#services) if (id === service) this.#services.delete(host);
    this.#claimed.delete(service);
    const { domain, bareIds } = this.#options;
    if (this.#options.kind && kind !== this.#options.kind) return undefined;
    const id = service.toLowerCase();
    const own = domain ? `${id}.${domain}` : id;
    const claimed = hosts.map((host) => host.toLowerCase());
    const taken = claimed.find((name) => (this.#services.get(name) ?? service) !== service);
    if (taken !== undefined) {
      return { reason: `host name ${taken} is already service ${this.#services.get(taken)}'s` };
    }
    for (const name of [...(bareIds ? [id] : []), own, ...claimed]) {
      this.#services.set(name, service);
    }
    this.#claimed.set(service, claimed);
    return { host: own };
  }

  /** Frees the names `service` claimed (its own stay). */
  withdraw(service: string): void {
    for (const name of this.#claimed.get(service) ?? []) this.#services.delete(name);
    this.#claimed.delete(service);
  }

  /** The service that answers to `host`, if any. */
  serviceAt(host: string): string | undefined {
    return this.#services.get(host.toLowerCase());
  }
}
