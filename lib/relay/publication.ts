/**
 * Bringing a service online and taking it offline (S4 in docs/flow.md): a session joins the
 * service's members in the registry, and the first member has every front that carries such a
 * service publish it; when the last member goes, the fronts withdraw it.
 */

import type { Front, PublishRequest } from "../front/front.ts";
import type { Member, Registry } from "./registry.ts";

/** The registry and the fronts, kept in step. */
export class Publication<M extends Member> {
  readonly #registry: Registry<M>;
  readonly #fronts: readonly Front[];

  constructor(registry: Registry<M>, fronts: readonly Front[]) {
    this.#registry = registry;
    this.#fronts = fronts;
  }

  /**
   * Adds `member` to the service's members and publishes it on every front that carries it:
   * resolves with where clients reach it (the port front's address first), or why it cannot be.
   */
  bringOnline(member: M, request: PublishRequest): { addresses: string[] } | { reason: string } {
    const { service } = request;
    const added = this.#registry.add(service, member);
    if ("reason" in added) return added;
    const addresses: string[] = [];
    for (const front of this.#fronts) {
      const published = front.publish(request);
      if (published && "reason" in published) {
        this.takeOffline(service, member);
        return published;
      }
      if (published) addresses.push(published.address);
    }
    if (addresses.length > 0) return { addresses };
    this.takeOffline(service, member);
    return { reason: `no front of the relay can publish service ${service}` };
  }

  /** Removes `member` from `service`; with no member left, the fronts stop publishing it. */
  takeOffline(service: string, member: M): void {
    if (!this.#registry.remove(service, member)) return;
    for (const front of this.#fronts) front.withdraw(service);
  }
}
