/**
 * Live services on the agent: the services it serves can change while its control channel stays
 * up (a new configuration on SIGHUP). A service added is published; one removed is withdrawn
 * (the relay stops taking its clients; those connected finish as they would); one whose public
 * side changed (kind, public port, host names) is withdrawn and published again; one whose target
 * or PROXY header changed serves its next connections the new way. Unchanged ones are untouched.
 */

import { createLogger } from "../log.ts";
import { formatHostPort } from "../address.ts";
import type { AgentService } from "./serve.ts";
import type { Registrar } from "./session.ts";

const log = createLogger("agent");

/** What changed, by service id: `changed` were published again, `retargeted` only dial anew. */
export interface ServiceChanges {
  added: string[];
  removed: string[];
  changed: string[];
  retargeted: string[];
}

/** The agent's services, and the session that publishes them, if one is up. */
export class LiveServices {
  /** The services now; sessions read it for every client. */
  readonly services: Map<string, AgentService>;
  /** Publishes and withdraws on the session up now. */
  registrar?: Registrar;

  constructor(services: ReadonlyMap<string, AgentService>) {
    this.services = new Map(services);
  }

  /** Serves `next` from now on; returns what changed. */
  update(next: ReadonlyMap<string, AgentService>): ServiceChanges {
    const changes: ServiceChanges = { added: [], removed: [], changed: [], retargeted: [] };
    for (const id of [...this.services.keys()]) {
      if (next.has(id)) continue;
      this.services.delete(id);
      this.registrar?.unregister(id);
      changes.removed.push(id);
    }
    for (const [id, service] of next) {
      const before = this.services.get(id);
      this.services.set(id, service);
      if (!before) {
        this.registrar?.register(id, service);
        changes.added.push(id);
      } else if (publicSide(before) !== publicSide(service)) {
        this.registrar?.unregister(id);
        this.registrar?.register(id, service);
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
}

/** What the relay publishes of a service. */
function publicSide({ kind = "tcp", port, hosts = [] }: AgentService): string {
  return JSON.stringify([kind, port, [...hosts].sort()]);
}

/** What only the agent uses of a service. */
function privateSide({ target, proxyProtocol }: AgentService): string {
  return JSON.stringify([formatHostPort(target), proxyProtocol]);
}
