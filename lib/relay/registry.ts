/**
 * The relay's registry: which agent sessions serve each service id. Members are kept as a list
 * per service, the shape that groups of agents and agents attached to several relays need; today
 * a service has one member at a time, and a second agent asking for an id in use is refused.
 */

/** What the registry needs to know of a member: who it is, for messages. */
export interface Member {
  agentId: string;
}

/** Service id → the sessions serving it. */
export class Registry<M extends Member> {
  #members = new Map<string, M[]>();

  /** Number of services online. */
  get size(): number {
    return this.#members.size;
  }

  /**
   * Adds `member` as a server of `service`. Resolves `{ first }` (true when the service was
   * offline until now), or the reason it cannot serve it.
   */
  add(service: string, member: M): { first: boolean } | { reason: string } {
    const members = this.#members.get(service);
    if (!members) {
      this.#members.set(service, [member]);
      return { first: true };
    }
    if (members.includes(member)) return { first: false };
    return {
      reason: `service id ${service} is already online from agent ${members[0].agentId}; ` +
        "choose another id or stop the other agent",
    };
  }

  /** Removes `member` from `service`; true when that left the service with no member. */
  remove(service: string, member: M): boolean {
    const members = this.#members.get(service);
    const at = members?.indexOf(member) ?? -1;
    if (at < 0) return false;
    members!.splice(at, 1);
    if (members!.length > 0) return false;
    this.#members.delete(service);
    return true;
  }

  /** The member to serve the next client of `service`, if it is online. */
  pick(service: string): M | undefined {
    return this.#members.get(service)?.[0];
  }

  /** The members serving `service` (empty when it is offline). */
  members(service: string): readonly M[] {
    return this.#members.get(service) ?? [];
  }
}
