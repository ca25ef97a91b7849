/**
 * The services of an agent's session on the relay (S3–S4 in docs/flow.md): registered by the
 * registration policy (lib/relay/policy.ts) and published (lib/relay/publication.ts), withdrawn,
 * taken out of rotation while the agent says they fail their health checks, checked again when
 * the configuration changes, and all taken offline when the session ends.
 */

import { createLogger } from "../log.ts";
import type { AgentMessageOf } from "../protocol.ts";
import { type PolicyContext, registrationProblem } from "./policy.ts";
import type { Publication } from "./publication.ts";
import type { AgentSession } from "./sessions.ts";

const log = createLogger("relay");

/** Sessions' services, as their agents register and withdraw them. */
export class SessionServices {
  constructor(
    private readonly policy: () => PolicyContext,
    private readonly publication: Publication<AgentSession>,
  ) {}

  /** S3–S4: brings a service online for `session`, or tells the agent why not. */
  register(
    session: AgentSession,
    { service, kind = "tcp", port, hosts }: AgentMessageOf<"register">,
  ): void {
    const context = this.policy();
    const problem = registrationProblem(context, session, service, port, hosts);
    const rules = context.config.services;
    const group = (rules.get(service) ?? rules.get("*"))?.group !== undefined;
    const result = problem
      ? { reason: problem }
      : this.publication.bringOnline(session, { service, kind, port, hosts }, group);
    if ("reason" in result) {
      log.warn(`agent ${session.agentId}: service ${service} refused: ${result.reason}`);
      session.channel.send({ type: "refused", service, reason: result.reason });
      return;
    }
    session.services.add(service);
    session.hosts.set(service, hosts ?? []);
    session.published.set(service, { kind, addresses: result.addresses });
    const [address, ...also] = result.addresses;
    log.info(
      `agent ${session.agentId}: service ${service} online at ${result.addresses.join(", ")}`,
    );
    session.channel.send({
      type: "registered",
      service,
      address,
      ...(also.length ? { also } : {}),
    });
  }

  /** S3: the agent withdraws `service`. */
  withdraw(session: AgentSession, service: string): void {
    if (!session.services.delete(service)) return;
    session.hosts.delete(service);
    session.published.delete(service);
    this.publication.takeOffline(service, session);
    log.info(`agent ${session.agentId}: service ${service} withdrawn`);
  }

  /** A service's health checks on the agent passed again, or failed. */
  health(session: AgentSession, { service, passing, reason }: AgentMessageOf<"health">): void {
    if (!this.publication.setHealthy(service, session, passing)) return;
    if (passing) log.info(`agent ${session.agentId}: service ${service} passes its health checks`);
    else {
      log.warn(
        `agent ${session.agentId}: service ${service} fails its health checks` +
          `${reason ? ` (${reason})` : ""}; it gets no clients until they pass`,
      );
    }
  }

  /** On reload: withdraws each service `session` may no longer serve, telling its agent why. */
  recheck(session: AgentSession): void {
    const context = this.policy();
    for (const service of [...session.services]) {
      const hosts = session.hosts.get(service);
      const problem = registrationProblem(context, session, service, undefined, hosts);
      if (!problem) continue;
      this.withdraw(session, service);
      session.channel.send({ type: "refused", service, reason: problem });
    }
  }

  /** Takes every service of `session`, which ended, offline. */
  endAll(session: AgentSession): void {
    for (const service of session.services) this.publication.takeOffline(service, session);
    if (session.services.size === 0) return;
    log.info(`agent ${session.agentId}: ${[...session.services].join(", ")} offline`);
    session.services.clear();
    session.published.clear();
  }
}
