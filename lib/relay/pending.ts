/**
 * Clients held by the relay (S6 in docs/flow.md) while their agent opens a data channel. Each waits under a
 * one-time connection id that is bound to one agent session, is claimed at most once, and
 * expires after a deadline.
 */

import { WhenEmpty } from "../drain.ts";
import type { Arrival } from "../front/front.ts";
import type { EarlyExchange } from "./early.ts";
import type { HeldConn } from "./held.ts";

/** A client waiting for its data channel. */
export interface PendingClient {
  /** How the client arrived: the service it asked for, its front. */
  arrival: Arrival;
  /** Its connection, holding its first bytes. */
  conn: HeldConn;
  /** Session id of the agent that was asked to serve it. */
  session: string;
  /** That agent's id, for logs. */
  agent: string;
  /** The client's address, for logs. */
  client: string;
  /** When the client connected (`performance.now()`). */
  since: number;
  /** Its bytes crossing the agent's control channel ahead of the data channel, if any do. */
  early?: EarlyExchange;
  /** Its connection id as relay and agent logs show it (`logId` of lib/protocol.ts). */
  logId?: string;
  /** Sessions of the agents that failed to serve it so far, when it was given to another. */
  tried?: Set<string>;
}

/** Why a data channel's connection id was not accepted. */
export type ClaimRefusal = "unknown, expired or already used" | "issued to another agent session";

/** The table of held clients, keyed by connection id. */
export class PendingTable {
  #entries = new Map<string, { client: PendingClient; timer: ReturnType<typeof setTimeout> }>();
  #perSession = new Map<string, number>();
  #empty = new WhenEmpty(() => this.#entries.size);

  /** Number of clients held now. */
  get size(): number {
    return this.#entries.size;
  }

  /** Resolves once no client is held, or after `timeoutMs`; true if none is. */
  emptied(timeoutMs: number): Promise<boolean> {
    return this.#empty.wait(timeoutMs);
  }

  /** Number of clients held for one agent session. */
  countForSession(session: string): number {
    return this.#perSession.get(session) ?? 0;
  }

  /** Holds `client` under `token`; `onExpire` gets it back if nobody claims it in `ttlMs`. */
  add(
    token: string,
    client: PendingClient,
    ttlMs: number,
    onExpire: (client: PendingClient) => void,
  ): void {
    const timer = setTimeout(() => onExpire(this.take(token)!), ttlMs);
    this.#entries.set(token, { client, timer });
    this.#perSession.set(client.session, this.countForSession(client.session) + 1);
  }

  /**
   * Hands over the client held under `token` if `session` is the one it was issued to, and
   * forgets the token so it cannot be used again. A token presented by another session stays
   * valid for its rightful owner.
   */
  claim(token: string, session: string): PendingClient | ClaimRefusal {
    const entry = this.#entries.get(token);
    if (!entry) return "unknown, expired or already used";
    if (entry.client.session !== session) return "issued to another agent session";
    return this.take(token)!;
  }

  /** The client held under `token`, left held. */
  peek(token: string): PendingClient | undefined {
    return this.#entries.get(token)?.client;
  }

  /** Removes and returns the client held under `token`, whoever asks. */
  take(token: string): PendingClient | undefined {
    const entry = this.#entries.get(token);
    if (!entry) return undefined;
    clearTimeout(entry.timer);
    this.#entries.delete(token);
    const { client } = entry;
    const left = this.countForSession(client.session) - 1;
    if (left > 0) this.#perSession.set(client.session, left);
    else this.#perSession.delete(client.session);
    this.#empty.check();
    return client;
  }

  /** Removes and returns every client held for `session`. */
  takeSession(session: string): PendingClient[] {
    const tokens = [...this.#entries].filter(([, e]) => e.client.session === session)
      .map(([token]) => token);
    return tokens.map((token) => this.take(token)!);
  }
}
