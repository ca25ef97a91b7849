/**
 * Bringing a service online and taking it offline (S4 in docs/flow.md): a session joins the
 * service's members in the registry, and the first member has every front that carries such a
 * service publish it; when the last member goes, the fronts withdraw it. A group's later members
 * join what the first published (its public port and host names stay while any member is up),
 * so they must ask for the same, or for nothing more.
 */

import type { Front, PublishRequest } from "../front/front.ts";
import type { Member, Registry } from "./registry.ts";

/** The registry and the fronts, kept in step. */
export class Publication<M extends Member> {
  readonly #registry: Registry<M>;
  readonly #fronts: readonly Front[];
  /** What each online service was published as, and where. */
  readonly #published = new Map<string, { request: PublishRequest; addresses: string[] }>();

  constructor(registry: Registry<M>, fronts: readonly Front[]) {
    this.#registry = registry;
    this.#fronts = fronts;
  }

  /**
   * Adds `member` to the service's members (`group`: whether it may have several) and, for the
   * first, publishes it on every front that carries it: resolves with where clients reach it
   * (the port front's address first), or why it cannot be.
   */
  bringOnline(
    member: M,
    request: PublishRequest,
    group: boolean,
  ): { addresses: string[] } | { reason: string } {
    const { service } = request;
    const published = this.#published.get(service);
    if (published) {
      const problem = mismatch(published.request, request);
      if (problem) return { reason: problem };
      const added = this.#registry.add(service, member, group);
      return "reason" in added ? added : { addresses: published.addresses };
    }
    const added = this.#registry.add(service, member, group);
    if ("reason" in added) return added;
    const addresses: string[] = [];
    for (const front of this.#fronts) {
      const result = front.publish(request);
      if (result && "reason" in result) {
        this.takeOffline(service, member);
        return result;
      }
      if (result) addresses.push(result.address);
    }
    if (addresses.length === 0) {
      this.takeOffline(service, member);
      return { reason: `no front of the relay can publish service ${service}` };
    }
    this.#published.set(service, { request, addresses });
    return { addresses };
  }

  /** Whether `member`'s `service` passes its health checks; true if that changed. */
  setHealthy(service: string, member: M, healthy: boolean): boolean {
    return this.#registry.setHealthy(service, member, healthy);
  }

  /** Removes `member` from `service`; with no member left, the fronts stop publishing it. */
  takeOffline(service: string, member: M): void {
    if (!this.#registry.remove(service, member)) return;
    this.#published.delete(service);
    for (const front of this.#fronts) front.withdraw(service);
  }
}

/** Why `request` cannot join the service `published` made public, if it cannot. */
function mismatch(published: PublishRequest, request: PublishRequest): string | undefined {
  const { service } = request;
  const hosts = published.hosts ?? [];
  const extra = (request.hosts ?? []).find((host) => !hosts.includes(host));
  const conflict = request.kind !== published.kind
    ? `it speaks ${published.kind}, not ${request.kind}`
    : request.port !== undefined && request.port !== published.port
    ? `it is published ${
      published.port ? `on port ${published.port}` : "on a port of the relay's choice"
    }, not ${request.port}`
    : extra !== undefined
    ? `it does not answer to ${extra}`
    : undefined;
  return conflict &&
    `service ${service} is already online, and ${conflict}: every agent serving it must ` +
      "publish it the same way (the same kind, and the same public port and host names or none)";
}
