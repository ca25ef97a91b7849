/**
 * Live services on the agent: the services it serves can change while its control channel stays
 * up (a new configuration on SIGHUP). A service added is published; one removed is withdrawn
 * (the relay stops taking its clients; those connected finish as they would); one whose public
 * side changed (kind, public port, host names) is withdrawn and published again; one whose target
 * or PROXY header changed serves its next connections the new way. Unchanged ones are untouched.
 * Each service with a health check has it run here (lib/agent/health.ts), and what it finds is
 * told to every session.
 */

import { createLogger } from "../log.ts";
import { formatHostPort } from "../address.ts";
import type { AgentService } from "./serve.ts";
import { HealthWatch } from "./health.ts";
import type { Registrar } from "./session.ts";

const log = createLogger("agent");

/** What changed, by service id: `changed` were published again, `retargeted` only dial anew. */
export interface ServiceChanges {
  added: string[];
  removed: string[];
  changed: string[];
  retargeted: string[];
}

/** The agent's services, and the sessions that publish them (one per relay that is up). */
export class LiveServices {
  /** The services now; sessions read it for every client. */
  readonly services: Map<string, AgentService>;
  readonly #registrars = new Set<Registrar>();
  readonly #watches = new Map<string, HealthWatch>();

  constructor(services: ReadonlyMap<string, AgentService>) {
    this.services = new Map(services);
    for (const [id, service] of services) this.#watch(id, service);
  }

  /** Publishes and withdraws on `registrar`'s session too, which has registered the services. */
  attach(registrar: Registrar): void {
    this.#registrars.add(registrar);
    for (const watch of this.#watches.values()) {
      if (!watch.passing) registrar.health(watch.id, false, watch.reason);
    }
  }

  /** Stops using `registrar`, whose session ended. */
  detach(registrar: Registrar): void {
    this.#registrars.delete(registrar);
  }

  /** Stops the health checks (the agent stopped). */
  stop(): void {
    for (const watch of this.#watches.values()) watch.stop();
    this.#watches.clear();
  }

  /** Serves `next` from now on; returns what changed. */
  update(next: ReadonlyMap<string, AgentService>): ServiceChanges {
    const changes: ServiceChanges = { added: [], removed: [], changed: [], retargeted: [] };
    for (const id of [...this.services.keys()]) {
      if (next.has(id)) continue;
      this.services.delete(id);
      this.#unwatch(id);
      this.#each((registrar) => registrar.unregister(id));
      changes.removed.push(id);
    }
    for (const [id, service] of next) {
      const before = this.services.get(id);
      this.services.set(id, service);
      const same = before && publicSide(before) === publicSide(service) &&
        privateSide(before) === privateSide(service);
      if (!same) this.#watch(id, service);
      if (!before) {
        this.#each((registrar) => registrar.register(id, service));
        changes.added.push(id);
      } else if (publicSide(before) !== publicSide(service)) {
        this.#each((registrar) => registrar.unregister(id));
        this.#each((registrar) => registrar.register(id, service));
        changes.changed.push(id);
      } else if (privateSide(before) !== privateSide(service)) {
        changes.retargeted.push(id);
      }
    }
    for (const [what, ids] of Object.entries(changes)) {
      if (ids.length > 0) log.info(`services ${what}: ${ids.join(", ")}`);
    }
    return changes;
  }

  #each(action: (registrar: Registrar) => void): void {
    this.#registrars.forEach(action);
  }

  /** Checks `service`'s health from now on, if it has a check (a check running is restarted). */
  #watch(id: string, service: AgentService): void {
    this.#unwatch(id);
    const { health } = service;
    if (!health) return;
    const report = ({ passing, reason }: HealthWatch) =>
      this.#each((registrar) => registrar.health(id, passing, reason));
    this.#watches.set(id, new HealthWatch(id, { ...service, health }, report));
  }

  /** Stops checking `id`; the sessions hear that it passes, should it have been failing. */
  #unwatch(id: string): void {
    const watch = this.#watches.get(id);
    if (!watch) return;
    watch.stop();
    this.#watches.delete(id);
    if (!watch.passing && this.services.has(id)) {
      this.#each((registrar) => registrar.health(id, true));
    }
  }
}

/** What the relay publishes of a service. */
function publicSide({ kind = "tcp", port, hosts = [] }: AgentService): string {
  return JSON.stringify([kind, port, [...hosts].sort()]);
}

/** What only the agent uses of a service. */
function privateSide({ target, proxyProtocol, health }: AgentService): string {
  return JSON.stringify([formatHostPort(target), proxyProtocol, health]);
}
