/**
 * The agent: keeps one control channel to each of its relays (lib/agent/relay_link.ts),
 * reconnecting with exponential backoff and jitter whenever one is lost, registers its services
 * with each, and serves the clients each announces (lib/agent/serve.ts). It only ever dials out,
 * and only to its relays and the services its own configuration names. Of the paths to a relay
 * (lib/agent/relay_paths.ts), it uses the best one that completes the handshake
 * (lib/agent/path_choice.ts), for data channels too.
 *
 * @example
 * ```ts
 * import { relayPaths } from "./relay_paths.ts";
 * const agent = startAgent({
 *   relays: [{
 *     name: "127.0.0.1:7835",
 *     paths: relayPaths({ address: { relay: { hostname: "127.0.0.1", port: 7835 } } }),
 *   }],
 *   secret: "a-secret-of-16-characters-or-more",
 *   id: "office",
 *   services: new Map([["web", { target: { hostname: "127.0.0.1", port: 3000 } }]]),
 * });
 * agent.shutdown();
 * await agent.done;
 * ```
 */

import { drain, OpenConnections, SHUTDOWN_TIMEOUT_MS } from "../drain.ts";
import { LiveConnections } from "../admin/live.ts";
import { formatMetrics } from "../admin/metrics.ts";
import { createLogger } from "../log.ts";
import { agentMetrics, agentStatus } from "./report.ts";
import { LiveServices, type ServiceChanges } from "./live_services.ts";
import { EARLY_WINDOW_BYTES } from "../protocol.ts";
import type { LinkOptions, RelayLink } from "./relay_link.ts";
import { type AgentRelay, RelaySet } from "./relay_set.ts";
import type { AgentService } from "./serve.ts";
import { AgentFatalError, type Registrar } from "./session.ts";
import { DEFAULT_MAX_SPARES, DEFAULT_MIN_SPARES, type SpareLimits } from "./spares.ts";

export { AgentFatalError };

/** What an agent is started with. */
export interface AgentOptions {
  /**
   * The relays to attach to, each by its name for logs and the ways to reach its agent port,
   * best first (lib/agent/relay_paths.ts).
   */
  relays: AgentRelay[];
  /** While on a worse path, how often to check the better ones (default: path_choice.ts'). */
  pathRecheckMs?: number;
  /** The shared secret. */
  secret: string;
  /** This agent's id, unique among the relay's agents. */
  id: string;
  /** Service id → the address the agent dials for it, and the public port it asks for. */
  services: Map<string, AgentService>;
  /** Longest pause between reconnection attempts (default: lib/agent/relay_link.ts'). */
  reconnectMaxMs?: number;
  /**
   * When the relay refuses this agent, try again after this long instead of stopping with
   * {@link AgentFatalError} (default: stop).
   */
  retryRefusedMs?: number;
  /** After `shutdown`, how long open connections get to finish before they are closed. */
  shutdownTimeoutMs?: number;
  /** Close a client connection once no byte has moved either way for this long (default: never). */
  idleTimeoutMs?: number;
  /**
   * Spare data channels to keep open (lib/agent/spares.ts; default {@link DEFAULT_MIN_SPARES}
   * to {@link DEFAULT_MAX_SPARES}); a maximum of 0 is the classic flow.
   */
  spares?: SpareLimits;
  /**
   * Send a client's first exchange over the control channel while its data channel is being
   * opened (lib/agent/early.ts; default true); false is the classic flow.
   */
  earlyData?: boolean;
}

/** What a running agent holds now, for operators (SIGUSR2) and tests. */
export interface AgentStats {
  /** Whether a control channel to a relay is up (to every relay, with `relays`). */
  relay: "connected" | "disconnected";
  /** The path to the (first) relay in use or last used, e.g. "TLS, direct". */
  path?: string;
  /** Each relay: whether its control channel is up, by which path, or why it refused the agent. */
  relays: { relay: string; connected: boolean; path?: string; refused?: string }[];
  /** Open service and data connections (the spare data channels among them). */
  connections: number;
  /** Spare data channels open and waiting for a client. */
  spares: number;
}

/** A running agent. */
export interface Agent {
  /** What it holds now. */
  stats(): AgentStats;
  /** The services it serves now (they change with {@link updateServices}). */
  readonly services: ReadonlyMap<string, AgentService>;
  /** The admin API's `/status` document (lib/agent/report.ts). */
  status(): ReturnType<typeof agentStatus>;
  /** The admin API's `/metrics` text. */
  metrics(): string;
  /**
   * Serves `services` from now on, without a new session (lib/agent/live_services.ts): added
   * ones are published, removed ones withdrawn; returns what changed.
   */
  updateServices(services: ReadonlyMap<string, AgentService>): ServiceChanges;
  /**
   * Is attached to `relays` from now on (lib/agent/relay_set.ts): new ones are dialled, those no
   * longer given are left, the connections through them going on.
   */
  setRelays(relays: readonly AgentRelay[]): void;
  /**
   * Stops: the control channel closes, and open connections get up to `shutdownTimeoutMs` to
   * finish before they are closed.
   */
  shutdown(): void;
  /**
   * Resolves once the agent has stopped after `shutdown`; rejects with {@link AgentFatalError}
   * when the relay refuses it (unless `retryRefusedMs` is set).
   */
  readonly done: Promise<void>;
}

const log = createLogger("agent");

/** Starts an agent; it runs until `shutdown` or a refusal that retrying cannot fix. */
export function startAgent(options: AgentOptions): Agent {
  const open = new OpenConnections(); // service and data connections, which outlive a session
  const stopping = new AbortController();
  const live = new LiveConnections();
  const services = new LiveServices(options.services);
  const relays = new RelaySet(
    linkOptions(options, services, live, open),
    stopping,
    options.pathRecheckMs,
  );
  relays.set(options.relays);
  const done = run(options, relays, services, open);
  const stats = (): AgentStats => {
    const links = relays.links;
    return {
      relay: links.some((link) => link.connected) ? "connected" : "disconnected",
      ...(links[0]?.path ? { path: links[0].path } : {}),
      relays: links.map(({ name, connected, path, refused }) => ({
        relay: name,
        connected,
        path,
        ...(refused ? { refused: refused.message } : {}),
      })),
      connections: open.size,
      spares: links.reduce((sum, link) => sum + link.spares, 0),
    };
  };
  const reported = {
    id: options.id,
    services: services.services,
    get links() {
      return relays.links;
    },
    live,
    stats,
  };
  const startedAt = Date.now();
  return {
    stats,
    services: services.services,
    status: () => agentStatus(reported, startedAt),
    metrics: () => formatMetrics(agentMetrics(reported)),
    updateServices(next) {
      const changes = services.update(next);
      for (const id of [...changes.removed, ...changes.changed]) {
        relays.links.forEach((link) => link.published.delete(id));
      }
      const graceMs = options.shutdownTimeoutMs ?? SHUTDOWN_TIMEOUT_MS;
      for (const id of changes.removed) {
        const timer = setTimeout(() => {
          if (services.services.has(id)) return; // added again meanwhile
          const closed = live.closeService(id);
          if (closed > 0) {
            log.info(
              `service ${id} was removed: closed ${closed} connection(s) still open after ` +
                `${graceMs / 1000} s`,
            );
          }
        }, graceMs);
        Deno.unrefTimer(timer);
      }
      return changes;
    },
    setRelays: (next) => relays.set(next),
    shutdown: () => stopping.abort(),
    done,
  };
}

/** The options every link's sessions share, with the registrars of the links kept in `services`. */
function linkOptions(
  options: AgentOptions,
  services: LiveServices,
  live: LiveConnections,
  open: OpenConnections,
): Omit<LinkOptions, "signal"> {
  const registrars = new Map<RelayLink, Registrar>();
  return {
    ...options,
    services: services.services,
    agentId: options.id,
    open,
    live,
    spares: options.spares ?? { min: DEFAULT_MIN_SPARES, max: DEFAULT_MAX_SPARES },
    earlyWindow: options.earlyData === false ? 0 : EARLY_WINDOW_BYTES,
    onRegistrar(link: RelayLink, registrar: Registrar | undefined) {
      const before = registrars.get(link);
      if (before) services.detach(before);
      if (registrar) registrars.set(link, registrar), services.attach(registrar);
      else registrars.delete(link);
    },
  };
}

/**
 * Waits until every link has ended (after `shutdown`, or what stopped them all: see
 * `RelaySet.ended`), then drains the open connections.
 */
async function run(
  options: AgentOptions,
  relays: RelaySet,
  services: LiveServices,
  open: OpenConnections,
): Promise<void> {
  try {
    await relays.ended();
    await drain(open, options.shutdownTimeoutMs ?? SHUTDOWN_TIMEOUT_MS, log);
  } finally {
    services.stop();
    open.releaseAll();
  }
}
