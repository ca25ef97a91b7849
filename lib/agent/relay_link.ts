/**
 * One relay the agent is attached to: a control channel kept up to it (lib/agent/session.ts),
 * dialled again with exponential backoff and jitter whenever it is lost, by the best of the paths
 * to it that completes the handshake (lib/agent/path_choice.ts). An agent attached to several
 * relays keeps one link to each; they share the services and the open connections, and nothing
 * else, so losing one relay disturbs nothing that goes through the others.
 */

import { Backoff, pause } from "../backoff.ts";
import { createLogger } from "../log.ts";
import { PathChoice } from "./path_choice.ts";
import type { RelayPath } from "./relay_paths.ts";
import { AgentFatalError, type Registrar, runSession, type SessionOptions } from "./session.ts";

/** First pause before reconnecting to the relay; it doubles after each failed attempt. */
export const RECONNECT_MIN_MS = 500;
/** Default longest pause between reconnection attempts. */
export const RECONNECT_MAX_MS = 10_000;

/** What a link's sessions share with the rest of the agent. */
export type LinkOptions =
  & Omit<
    SessionOptions,
    | "dialer"
    | "path"
    | "onEstablished"
    | "endWhen"
    | "onConnected"
    | "onSpares"
    | "onRegistrar"
    | "published"
  >
  & {
    /** Longest pause between reconnection attempts (default {@link RECONNECT_MAX_MS}). */
    reconnectMaxMs?: number;
    /** When the relay refuses the agent, try again after this long instead of throwing. */
    retryRefusedMs?: number;
    /** Called with the link's registrar while a session is up, and with undefined after. */
    onRegistrar(link: RelayLink, registrar: Registrar | undefined): void;
  };

const log = createLogger("agent");

/** The agent's attachment to one relay. */
export class RelayLink {
  /** The relay as logs and status name it. */
  readonly name: string;
  /** Each service the relay brought online, with its public addresses, while connected. */
  readonly published = new Map<string, readonly string[]>();
  /** How the relay refused the agent for good, once it has (set by lib/agent/relay_set.ts). */
  refused?: AgentFatalError;
  readonly #choice: PathChoice;
  #connected = false;
  #spares?: { readonly idle: number };

  /** A link over `paths` (best first) to the relay `name`. */
  constructor(name: string, paths: RelayPath[], pathRecheckMs?: number) {
    this.name = name;
    this.#choice = new PathChoice(paths, pathRecheckMs);
  }

  /** Whether its control channel is up. */
  get connected(): boolean {
    return this.#connected;
  }

  /** The path in use, or last used, e.g. "TLS, direct". */
  get path(): string | undefined {
    return this.#choice.chosen?.name;
  }

  /** Spare data channels open to this relay and waiting for a client. */
  get spares(): number {
    return this.#spares?.idle ?? 0;
  }

  /**
   * Keeps a session up until `options.signal` aborts; rejects with {@link AgentFatalError} when
   * the relay refuses the agent and `retryRefusedMs` is not set.
   */
  async keep(options: LinkOptions): Promise<void> {
    const { signal, retryRefusedMs } = options;
    const backoff = new Backoff(RECONNECT_MIN_MS, options.reconnectMaxMs ?? RECONNECT_MAX_MS);
    const session = {
      ...options,
      published: this.published,
      onConnected: (up: boolean) => this.#connected = up,
      onSpares: (pool?: { readonly idle: number }) => this.#spares = pool,
      onRegistrar: (registrar?: Registrar) => options.onRegistrar(this, registrar),
    };
    while (!signal.aborted) {
      let ended;
      try {
        ended = await this.#choice.attempt((path, onEstablished) =>
          runSession({
            ...session,
            dialer: path.dialer,
            path: path.name,
            onEstablished,
            endWhen: (sessionEnded) => this.#choice.betterThan(path, sessionEnded),
          })
        );
      } catch (error) {
        if (!(error instanceof AgentFatalError) || retryRefusedMs === undefined) throw error;
        log.error(`${error.message}; trying again in ${retryRefusedMs / 1000} s (--retry-refused)`);
        await pause(retryRefusedMs, signal);
        continue;
      }
      if (signal.aborted) break;
      if (ended.established) backoff.reset();
      const waitMs = backoff.next();
      log.warn(`${ended.reason}; reconnecting in ${waitMs} ms (attempt ${backoff.attempt})`);
      await pause(waitMs, signal);
    }
  }
}
