/**
 * Early data on the relay (S7b and S9b in docs/flow.md; the mechanism in lib/early.ts): a held
 * client's first bytes go to its agent over the control channel right after `connect`, and the
 * service's first answer comes back the same way and is written to the client, while the data
 * channel is still being opened. When it comes, its `data` frame says how many bytes the agent
 * sent early; those are written before the data channel's own, and `ready` says how many of the
 * client's went early.
 */

import { EarlySink, EarlySinks } from "../early.ts";
import { EARLY_CHUNK_BYTES, type RelayMessage } from "../protocol.ts";
import type { PendingClient } from "./pending.ts";

/** A held client's exchange over its agent's control channel. */
export interface EarlyExchange {
  /** The connection id it is held under. */
  token: string;
  /** The client's bytes sent to the agent early: their count, and the bytes themselves. */
  sent: number;
  taken: Uint8Array;
  /** The service's bytes the agent sent early, written to the client. */
  replies: EarlySink;
}

/** The session a client is held for, as early data needs it. */
export interface EarlySession {
  id: string;
  /** Bytes per connection and direction it may send early; 0 for none. */
  earlyWindow: number;
  channel: { send(message: RelayMessage): unknown };
}

/** Every held client's early exchange, by connection id. */
export class EarlyExchanges {
  readonly #sinks = new EarlySinks();

  /** Exchanges under way. */
  get size(): number {
    return this.#sinks.size;
  }

  /**
   * S7b: begins `client`'s exchange, held under `token` for `session`, unless the session has no
   * window or the client's front answers it first itself (a proxy's "connected"): once its first
   * bytes are in, they go to the agent if `stillHeld()` says no data channel took them yet.
   * Returns the window (0 for no exchange), for `connect` to say.
   */
  begin(
    client: PendingClient,
    token: string,
    session: EarlySession,
    stillHeld: () => boolean,
  ): number {
    const window = session.earlyWindow;
    if (window === 0 || client.arrival.front.welcome) return 0;
    const exchange: EarlyExchange = {
      token,
      sent: 0,
      taken: new Uint8Array(0),
      replies: new EarlySink(window, client.conn),
    };
    client.early = exchange;
    this.#sinks.open(token, exchange.replies, session.id);
    client.conn.arrivedLater().then(() => {
      if (!stillHeld()) return;
      const bytes = client.conn.takeArrived(window);
      for (let at = 0; at < bytes.length; at += EARLY_CHUNK_BYTES) {
        const chunk = bytes.subarray(at, at + EARLY_CHUNK_BYTES);
        session.channel.send({ type: "early", conn: token, bytes: chunk });
      }
      exchange.sent = bytes.length;
      exchange.taken = bytes;
    });
    return window;
  }

  /**
   * S9b: the service's bytes for connection `token`, from `session`'s agent. False when they
   * overran the window (the client must be closed); frames for no exchange are dropped.
   */
  received(session: string, token: string, bytes: Uint8Array): boolean {
    return this.#sinks.push(token, bytes, session) !== "overrun";
  }

  /**
   * S11 for a client with an exchange: resolves once the `count` bytes the agent sent early
   * (as its data channel's `data` says) are written to the client; the exchange then ends.
   */
  async finish(client: PendingClient, count: number, timeoutMs: number): Promise<void> {
    const exchange = client.early;
    if (!exchange) {
      if (count === 0) return;
      throw new Error(`the agent says ${count} bytes went early, but none were to`);
    }
    try {
      await exchange.replies.until(count, timeoutMs);
    } finally {
      this.end(client);
    }
  }

  /** Ends `client`'s exchange, if it has one; frames still coming for it are dropped. */
  end(client: PendingClient): void {
    if (client.early) this.#sinks.close(client.early.token);
  }

  /** Ends every exchange of `session`, whose control channel ended. */
  dropSession(session: string): void {
    this.#sinks.dropOwner(session, new Error("the agent's control channel ended"));
  }
}
