/**
 * The agent: keeps one control channel to the relay (lib/agent/session.ts), reconnecting with
 * exponential backoff and jitter whenever it is lost, and serves the clients the relay announces
 * (lib/agent/serve.ts). It only ever dials out, and only to the relay and the services its own
 * configuration names. Of the paths to the relay (lib/agent/relay_paths.ts), it uses the best
 * one that completes the handshake (lib/agent/path_choice.ts), for data channels too.
 *
 * @example
 * ```ts
 * import { relayPaths } from "./relay_paths.ts";
 * const agent = startAgent({
 *   paths: relayPaths({ address: { relay: { hostname: "127.0.0.1", port: 7835 } } }),
 *   secret: "a-secret-of-16-characters-or-more",
 *   id: "office",
 *   services: new Map([["web", { target: { hostname: "127.0.0.1", port: 3000 } }]]),
 * });
 * agent.shutdown();
 * await agent.done;
 * ```
 */

import { Backoff, pause } from "../backoff.ts";
import { drain, OpenConnections, SHUTDOWN_TIMEOUT_MS } from "../drain.ts";
import { LiveConnections } from "../admin/live.ts";
import { formatMetrics } from "../admin/metrics.ts";
import { createLogger } from "../log.ts";
import { agentMetrics, agentStatus } from "./report.ts";
import { LiveServices, type ServiceChanges } from "./live_services.ts";
import { EARLY_WINDOW_BYTES } from "../protocol.ts";
import { PathChoice } from "./path_choice.ts";
import type { RelayPath } from "./relay_paths.ts";
import type { AgentService } from "./serve.ts";
import { AgentFatalError, runSession, type SessionOptions } from "./session.ts";
import { DEFAULT_MAX_SPARES, DEFAULT_MIN_SPARES, type SpareLimits } from "./spares.ts";

export { AgentFatalError };

/** First pause before reconnecting to the relay; it doubles after each failed attempt. */
export const RECONNECT_MIN_MS = 500;
/** Default longest pause between reconnection attempts. */
export const RECONNECT_MAX_MS = 10_000;

/** What an agent is started with. */
export interface AgentOptions {
  /** The ways to reach the relay's agent port, best first (lib/agent/relay_paths.ts). */
  paths: RelayPath[];
  /** While on a worse path, how often to check the better ones (default: path_choice.ts'). */
  pathRecheckMs?: number;
  /** The shared secret. */
  secret: string;
  /** This agent's id, unique among the relay's agents. */
  id: string;
  /** Service id → the address the agent dials for it, and the public port it asks for. */
  services: Map<string, AgentService>;
  /** Longest pause between reconnection attempts (default {@link RECONNECT_MAX_MS}). */
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
  /** Whether the control channel to the relay is up. */
  relay: "connected" | "disconnected";
  /** The path to the relay in use or last used, e.g. "TLS, direct". */
  path?: string;
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
  let connected = false;
  let spares: { readonly idle: number } | undefined;
  const choice = new PathChoice(options.paths, options.pathRecheckMs);
  const live = new LiveConnections();
  const published = new Map<string, readonly string[]>();
  const services = new LiveServices(options.services);
  const done = run({ ...options, services: services.services }, choice, open, stopping.signal, {
    onConnected: (up) => connected = up,
    onSpares: (pool) => spares = pool,
    onRegistrar: (registrar) => services.registrar = registrar,
    live,
    published,
  });
  const stats = (): AgentStats => ({
    relay: connected ? "connected" : "disconnected",
    ...(choice.chosen ? { path: choice.chosen.name } : {}),
    connections: open.size,
    spares: spares?.idle ?? 0,
  });
  const reported = { id: options.id, services: services.services, published, live, stats };
  const startedAt = Date.now();
  return {
    stats,
    services: services.services,
    status: () => agentStatus(reported, startedAt),
    metrics: () => formatMetrics(agentMetrics(reported)),
    updateServices(next) {
      const changes = services.update(next);
      for (const id of [...changes.removed, ...changes.changed]) published.delete(id);
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
    shutdown: () => stopping.abort(),
    done,
  };
}

/** Sessions one after another until `signal` aborts, then the drain. */
async function run(
  options: AgentOptions,
  choice: PathChoice,
  open: OpenConnections,
  signal: AbortSignal,
  report: Pick<
    SessionOptions,
    "onConnected" | "onSpares" | "onRegistrar" | "live" | "published"
  >,
): Promise<void> {
  const backoff = new Backoff(RECONNECT_MIN_MS, options.reconnectMaxMs ?? RECONNECT_MAX_MS);
  const spares = options.spares ?? { min: DEFAULT_MIN_SPARES, max: DEFAULT_MAX_SPARES };
  const earlyWindow = options.earlyData === false ? 0 : EARLY_WINDOW_BYTES;
  const session = {
    ...options,
    ...report,
    agentId: options.id,
    open,
    signal,
    spares,
    earlyWindow,
  };
  try {
    while (!signal.aborted) {
      let ended;
      try {
        ended = await choice.attempt((path, onEstablished) =>
          runSession({
            ...session,
            dialer: path.dialer,
            path: path.name,
            onEstablished,
            endWhen: (sessionEnded) => choice.betterThan(path, sessionEnded),
          })
        );
      } catch (error) {
        if (!(error instanceof AgentFatalError) || options.retryRefusedMs === undefined) {
          throw error;
        }
        log.error(
          `${error.message}; trying again in ${options.retryRefusedMs / 1000} s (--retry-refused)`,
        );
        await pause(options.retryRefusedMs, signal);
        continue;
      }
      if (signal.aborted) break;
      if (ended.established) backoff.reset();
      const waitMs = backoff.next();
      log.warn(`${ended.reason}; reconnecting in ${waitMs} ms (attempt ${backoff.attempt})`);
      await pause(waitMs, signal);
    }
    await drain(open, options.shutdownTimeoutMs ?? SHUTDOWN_TIMEOUT_MS, log);
  } finally {
    open.releaseAll();
  }
}
