/**
 * The relay's registry: which agent sessions serve each service id, and which of them gets the
 * next client. A service has one member, unless the relay's config makes it a group
 * (`[services.ID] group = true`): then every agent that registers it joins, and new clients are
 * spread across the members (round robin, or least connections). A member whose health checks
 * fail (its agent says so) gets no clients until they pass again; one whose dial to the service
 * failed is passed over for {@link FAILED_MEMBER_PAUSE_MS}, unless no other member is left.
 */

/** How new clients are spread across a group's members. */
export type Balance = "round-robin" | "least-connections";

/** How long a member whose dial to its service failed is passed over while others can serve. */
export const FAILED_MEMBER_PAUSE_MS = 10_000;

/** What the registry needs to know of a member: who it is, for messages. */
export interface Member {
  agentId: string;
}

/** A member as the registry keeps it. */
interface Seat<M> {
  member: M;
  /** False while the agent reports the service failing its health checks. */
  healthy: boolean;
  /** Until when (`performance.now()`) it is passed over, after a failed dial. */
  pausedUntil: number;
  /** Clients given to it so far. */
  served: number;
}

/** A member's state, as status and metrics show it. */
export interface MemberState<M> {
  member: M;
  healthy: boolean;
  paused: boolean;
  served: number;
}

/** How the next member is picked. */
export interface PickOptions<M> {
  balance: Balance;
  /** Members not to pick (they already failed this client). */
  exclude?: ReadonlySet<M>;
  /** Connections each member has open for the service now, for least connections. */
  load?: (member: M) => number;
}

/** Service id → the sessions serving it. */
export class Registry<M extends Member> {
  #groups = new Map<string, { seats: Seat<M>[]; turn: number }>();

  /** Number of services online. */
  get size(): number {
    return this.#groups.size;
  }

  /**
   * Adds `member` as a server of `service` (`group`: whether the service may have several).
   * Returns `{ first }` (true when the service was offline until now), or why it may not.
   */
  add(service: string, member: M, group: boolean): { first: boolean } | { reason: string } {
    const entry = this.#groups.get(service);
    const seat = { member, healthy: true, pausedUntil: 0, served: 0 };
    if (!entry) {
      this.#groups.set(service, { seats: [seat], turn: 0 });
      return { first: true };
    }
    if (entry.seats.some((seat) => seat.member === member)) return { first: false };
    if (!group) {
      return {
        reason: `service id ${service} is already online from agent ` +
          `${entry.seats[0].member.agentId}; choose another id, stop the other agent, or let ` +
          `agents serve it together with group = true under [services.${service}] in the ` +
          "relay's config",
      };
    }
    entry.seats.push(seat);
    return { first: false };
  }

  /** Removes `member` from `service`; true when that left the service with no member. */
  remove(service: string, member: M): boolean {
    const entry = this.#groups.get(service);
    const at = entry?.seats.findIndex((seat) => seat.member === member) ?? -1;
    if (at < 0) return false;
    entry!.seats.splice(at, 1);
    if (entry!.seats.length > 0) return false;
    this.#groups.delete(service);
    return true;
  }

  /** Records what `member`'s health checks of `service` say; true if that changed its state. */
  setHealthy(service: string, member: M, healthy: boolean): boolean {
    const seat = this.#seat(service, member);
    if (!seat || seat.healthy === healthy) return false;
    seat.healthy = healthy;
    return true;
  }

  /** Passes `member` over for `service`'s next clients for `ms` (its dial to it failed). */
  pause(service: string, member: M, ms = FAILED_MEMBER_PAUSE_MS): void {
    const seat = this.#seat(service, member);
    if (seat) seat.pausedUntil = performance.now() + ms;
  }

  /**
   * The member to serve the next client of `service`: a healthy one not excluded, one not
   * paused if there is such, by `balance`. Undefined when none is left.
   */
  pick(service: string, { balance, exclude, load }: PickOptions<M>): M | undefined {
    const entry = this.#groups.get(service);
    if (!entry) return undefined;
    const now = performance.now();
    const candidates = entry.seats.filter((seat) => seat.healthy && !exclude?.has(seat.member));
    const ready = candidates.filter((seat) => seat.pausedUntil <= now);
    const from = ready.length > 0 ? ready : candidates;
    if (from.length === 0) return undefined;
    let seat = from[entry.turn++ % from.length];
    if (balance === "least-connections" && load) {
      const loads = from.map((seat) => load(seat.member));
      const least = Math.min(...loads);
      seat = from.filter((_, at) => loads[at] === least).reduce((a, b) =>
        b.served < a.served ? b : a
      );
    }
    seat.served++;
    return seat.member;
  }

  /** The members serving `service` and their state (empty when it is offline). */
  members(service: string): MemberState<M>[] {
    const now = performance.now();
    return (this.#groups.get(service)?.seats ?? []).map((
      { member, healthy, pausedUntil, served },
    ) => ({
      member,
      healthy,
      paused: pausedUntil > now,
      served,
    }));
  }

  #seat(service: string, member: M): Seat<M> | undefined {
    return this.#groups.get(service)?.seats.find((seat) => seat.member === member);
  }
}
