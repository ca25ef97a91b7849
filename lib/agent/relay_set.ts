/**
 * The relays an agent is attached to, one {@link RelayLink} each, a set that may change while the
 * agent runs (a relay name whose DNS answer changed, lib/agent/relays_from_flags.ts): a relay
 * added is attached to at once, a relay gone has its control channel closed while the
 * connections through it go on. A relay refusing the agent for good (a wrong secret, another
 * protocol version) is left while another relay still has the agent; the last one refusing stops
 * every link, and the agent with its error.
 */

import { createLogger } from "../log.ts";
import { type LinkOptions, RelayLink } from "./relay_link.ts";
import type { RelayPath } from "./relay_paths.ts";
import { AgentFatalError } from "./session.ts";

const log = createLogger("agent");

/** A relay to attach to: its name for logs (unique in the set) and its paths, best first. */
export interface AgentRelay {
  name: string;
  paths: RelayPath[];
}

interface Attached {
  link: RelayLink;
  detach: AbortController;
}

/** The agent's links to its relays. */
export class RelaySet {
  readonly #attached = new Map<string, Attached>();
  readonly #ending = new Set<Promise<void>>();
  readonly #options: Omit<LinkOptions, "signal">;
  readonly #stopping: AbortController;
  readonly #pathRecheckMs?: number;
  #failure?: { error: unknown };

  /** A set whose links share `options`, all of them ended when `stopping` aborts. */
  constructor(
    options: Omit<LinkOptions, "signal">,
    stopping: AbortController,
    pathRecheckMs?: number,
  ) {
    this.#options = options;
    this.#stopping = stopping;
    this.#pathRecheckMs = pathRecheckMs;
  }

  /** Every link, in the order the relays were given. */
  get links(): RelayLink[] {
    return [...this.#attached.values()].map(({ link }) => link);
  }

  /** Attaches to the relays of `relays` not attached yet, and detaches from those not in it. */
  set(relays: readonly AgentRelay[]): void {
    const names = new Set(relays.map(({ name }) => name));
    for (const [name, attached] of this.#attached) {
      if (names.has(name)) continue;
      this.#attached.delete(name);
      attached.detach.abort();
    }
    for (const { name, paths } of relays) {
      if (!this.#attached.has(name) && !this.#stopping.signal.aborted) this.#attach(name, paths);
    }
    this.#stopIfAllRefused();
  }

  /**
   * Resolves once the agent is stopping and every link has ended; rejects with what stopped them,
   * if not `shutdown`: a link's unexpected error, or the first refusal once every relay refused.
   */
  async ended(): Promise<void> {
    const { signal } = this.#stopping;
    if (!signal.aborted) {
      await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
    }
    while (this.#ending.size > 0) await Promise.all(this.#ending);
    if (this.#failure) throw this.#failure.error;
  }

  #attach(name: string, paths: RelayPath[]): void {
    const link = new RelayLink(name, paths, this.#pathRecheckMs);
    const detach = new AbortController();
    const signal = AbortSignal.any([this.#stopping.signal, detach.signal]);
    const kept: Promise<void> = link.keep({ ...this.#options, signal }).catch((error) => {
      if (!(error instanceof AgentFatalError)) return this.#stop(error);
      link.refused = error;
      if (this.#stopIfAllRefused()) return;
      log.error(
        `relay ${name}: ${error.message}; going on with the other relays (once it is fixed, restart ` +
          "this agent, or run it with --retry-refused to try again by itself)",
      );
    }).finally(() => this.#ending.delete(kept));
    this.#ending.add(kept);
    this.#attached.set(name, { link, detach });
  }

  /** Stops every link with the first refusal when every relay has refused; true if so. */
  #stopIfAllRefused(): boolean {
    const links = this.links;
    if (links.length === 0 || !links.every(({ refused }) => refused)) return false;
    this.#stop(links[0].refused);
    return true;
  }

  #stop(error: unknown): void {
    this.#failure ??= { error };
    this.#stopping.abort();
  }
}
