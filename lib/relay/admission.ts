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
export type Reason = "offline" | "pending" | "access" | "visitor";

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
    },
  ) {}

  /** S6–S7: admits `arrival`, holds it, and asks the service's agent for a data channel. */
  arrive(arrival: Arrival): void {
    const { registry, rendezvous, spares, access, limits } = this.parts;
    const { service } = arrival;
    const session = registry.pick(service);
    if (!session) {
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
    const to = formatAddr(arrival.conn.localAddr);
    /** S6–S7, the classic way: held under an id, the agent asked for a data channel. */
    const ask = (held?: PendingClient) => {
      const { token, client } = held
        ? rendezvous.holdAgain(held)
        : rendezvous.hold(arrival, session, admission.release);
      const early = rendezvous.sendEarly(token, session);
      session.channel.send({
        type: "connect",
        service,
        conn: token,
        client,
        to,
        ...(early ? { early } : {}),
      });
    };
    const hold = () => {
      if (!spares.handOver(arrival, session, to, admission.release, ask)) ask();
    };
    if (!access.hasVisitors(service)) return hold();
    access.visitorAllowed(service, arrival.credentials).then((allowed) => {
      if (allowed) return hold();
      admission.release();
      this.#turnAway(arrival, "visitor", "refused: no valid user and password (basic_auth)");
    });
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
