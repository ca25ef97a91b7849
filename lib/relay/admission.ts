/**
 * Admission of a client that arrived at a front (S6–S7 in docs/flow.md): the service must have
 * an agent online whose waiting clients are within the limit, and the access rules must let the
 * client in (its address, the counts, the visitors); then it goes to one of the agent's spare
 * data channels (lib/relay/spares.ts), or else the rendezvous holds it and the agent is asked over
 * its control channel for a data channel. A client turned away is told so by its
 * front, counted, and logged at most once a minute per address, service and reason.
 */

import type { Arrival } from "../front/front.ts";
import { createLogger } from "../log.ts";
import { formatAddr } from "../address.ts";
import { LogThrottle } from "../throttle.ts";
import type { AccessControl } from "./access.ts";
import type { Limits } from "./config.ts";
import type { Registry } from "./registry.ts";
import type { PendingClient } from "./pending.ts";
import type { Rendezvous } from "./rendezvous.ts";
import type { Spares } from "./spares.ts";
import type { AgentSession } from "./sessions.ts";

/** Why a client was turned away, for the log's throttle, the front's answer and the metrics. */
export type Reason = "offline" | "unhealthy" | "pending" | "access" | "visitor";

const log = createLogger("relay");

/** Admits clients to the agents serving their services. */
export class Admission {
  /** Clients turned away so far. */
  refused = 0;
  /** Clients turned away so far, by why. */
  readonly refusedBy = new Map<Reason, number>();
  #throttle = new LogThrottle();

  constructor(
    private readonly parts: {
      registry: Registry<AgentSession>;
      rendezvous: Rendezvous;
      spares: Spares;
      access: AccessControl;
      limits: () => Limits;
      /** Connections an agent session has open for a service now (least connections). */
      load: (session: AgentSession, service: string) => number;
    },
  ) {}

  /** S6–S7: admits `arrival`, holds it, and asks an agent of its service for a data channel. */
  arrive(arrival: Arrival): void {
    const { registry, rendezvous, access, limits } = this.parts;
    const { service } = arrival;
    const session = this.#pick(service);
    if (!session) {
      if (registry.members(service).length > 0) {
        return this.#turnAway(
          arrival,
          "unhealthy",
          "every agent serving it reports it failing its health checks; closing",
        );
      }
      return this.#turnAway(
        arrival,
        "offline",
        `no agent is serving it now; closing (start the agent that has --service ${service}=...)`,
      );
    }
    const { maxPendingPerAgent } = limits();
    if (rendezvous.countFor(session.id) >= maxPendingPerAgent) {
      return this.#turnAway(
        arrival,
        "pending",
        `agent ${session.agentId} already has ${maxPendingPerAgent} clients waiting ` +
          "for data channels (limits.max_pending_per_agent); closing",
      );
    }
    const admission = access.admit(service, arrival.client.hostname);
    if (!admission.admitted) {
      return this.#turnAway(arrival, "access", `refused: ${admission.reason}`);
    }
    const hold = () => this.#send(rendezvous.toHold(arrival, session, admission.release), session);
    if (!access.hasVisitors(service)) return hold();
    access.visitorAllowed(service, arrival.credentials).then((allowed) => {
      if (allowed) return hold();
      admission.release();
      this.#turnAway(arrival, "visitor", "refused: no valid user and password (basic_auth)");
    });
  }

  /**
   * A held client its agent could not serve (`why`) goes to another agent of its service that
   * has not failed it yet, if one is online; the agent that failed is passed over for a while.
   * False when none is left (the caller turns the client away).
   */
  retry(client: PendingClient, taken: Uint8Array, why: string): boolean {
    const { registry, rendezvous } = this.parts;
    const { service } = client.arrival;
    const failed = registry.members(service).find(({ member }) => member.id === client.session);
    if (failed) registry.pause(service, failed.member);
    const tried = client.tried ?? new Set();
    tried.add(client.session);
    const next = this.#pick(service, tried);
    if (!next) return false;
    log.info(
      `client ${client.client} for service ${service}: ${why}; trying agent ${next.agentId}`,
    );
    this.#send({ ...rendezvous.rehold(client, taken, next), tried }, next);
    return true;
  }

  #pick(service: string, tried?: ReadonlySet<string>): AgentSession | undefined {
    const { registry, access, load } = this.parts;
    return registry.pick(service, {
      balance: access.groupOf(service)?.balance ?? "round-robin",
      exclude: tried && new Set(
        registry.members(service).map(({ member }) => member).filter(
          (member) => tried.has(member.id),
        ),
      ),
      load: (session) => load(session, service),
    });
  }

  /** S7 for `client`, held for `session`: to a spare data channel, or else over its control channel. */
  #send(client: PendingClient, session: AgentSession): void {
    const { rendezvous, spares } = this.parts;
    const to = formatAddr(client.arrival.conn.localAddr);
    const ask = (held: PendingClient) => {
      const { token } = rendezvous.holdAgain(held);
      const early = rendezvous.sendEarly(token, session);
      session.channel.send({
        type: "connect",
        service: held.arrival.service,
        conn: token,
        client: held.client,
        to,
        ...(early ? { early } : {}),
      });
    };
    if (!spares.handOver(client, to, ask)) ask(client);
  }

  #turnAway(arrival: Arrival, reason: Reason, why: string): void {
    this.refused++;
    this.refusedBy.set(reason, (this.refusedBy.get(reason) ?? 0) + 1);
    const refusal = reason === "offline"
      ? "offline"
      : reason === "visitor"
      ? "unauthorized"
      : "denied";
    arrival.front.refuse(arrival, refusal);
    const { service } = arrival;
    this.#throttle.pass(`${arrival.client.hostname} ${service} ${reason}`, (note) => {
      log.warn(`client ${formatAddr(arrival.client)} for service ${service}: ${why}${note}`);
    });
  }
}
