/**
 * The agent's spare data channels (S9a in docs/flow.md, the relay's side in lib/relay/spares.ts):
 * data channels opened ahead, bound to the session, each waiting for the relay to give it a
 * client, so that a new client waits one round trip of the agent-relay link instead of three or
 * four. A spare used is replaced at once. The pool keeps its minimum while idle; a client that
 * came the classic way (no spare was free at the relay) grows it by one, up to its maximum or the
 * relay's offer; after {@link SPARE_IDLE_MS} with no client on a spare it shrinks back.
 */

import { FrameReader } from "../frames.ts";
import { createLogger } from "../log.ts";
import { closeQuietly, type Conn, describeError, writeAll } from "../net.ts";
import { PROTOCOL_VERSION } from "../protocol.ts";
import { decodeRelayMessage, encodeFrame } from "../message_codec.ts";
import { DIAL_TIMEOUT_MS, type ServeContext, serveOnSpare } from "./serve.ts";

/** Spares an idle agent keeps, unless `--spares` says otherwise. */
export const DEFAULT_MIN_SPARES = 2;
/** Spares a busy agent keeps at most, unless `--spares` (or the relay's offer) says otherwise. */
export const DEFAULT_MAX_SPARES = 8;
/** After this long with no client on a spare, the pool shrinks back to its minimum. */
export const SPARE_IDLE_MS = 30_000;
/** Pause before opening again a spare that ended without a client. */
export const SPARE_REOPEN_MS = 1_000;

/** How many spares to keep: at least `min` while idle, at most `max` while busy. */
export interface SpareLimits {
  min: number;
  max: number;
}

const log = createLogger("agent");

/** One session's spare data channels. */
export class SparePool {
  #context: ServeContext;
  #limits: SpareLimits;
  #target: number;
  #idle = new Set<Conn>();
  #opening = 0;
  #lastUsed = performance.now();
  #closed = false;
  #shrinker: ReturnType<typeof setInterval>;

  /** Keeps `limits.min` spares for the session of `context` (`offered`: the relay's maximum). */
  constructor(context: ServeContext, limits: SpareLimits, offered: number) {
    this.#context = context;
    this.#limits = { min: Math.min(limits.min, offered), max: Math.min(limits.max, offered) };
    this.#target = this.#limits.min;
    this.#shrinker = setInterval(() => this.#shrinkWhenIdle(), SPARE_IDLE_MS);
    this.#fill();
  }

  /** Spares open and waiting now. */
  get idle(): number {
    return this.#idle.size;
  }

  /** A client came the classic way: no spare was free. Keeps one more, up to the maximum. */
  short(): void {
    this.#lastUsed = performance.now();
    this.#target = Math.min(this.#limits.max, this.#target + 1);
    this.#fill();
  }

  /** The session ended: the spares waiting are closed (the relay has dropped them already). */
  close(): void {
    this.#closed = true;
    clearInterval(this.#shrinker);
    for (const conn of this.#idle) this.#context.open.release(conn);
    this.#idle.clear();
  }

  #fill(): void {
    while (!this.#closed && this.#idle.size + this.#opening < this.#target) this.#openOne();
  }

  #shrinkWhenIdle(): void {
    if (performance.now() - this.#lastUsed < SPARE_IDLE_MS) return;
    this.#target = this.#limits.min;
    for (const conn of [...this.#idle].slice(this.#target)) {
      this.#idle.delete(conn);
      this.#context.open.release(conn);
    }
  }

  /** S9a: opens a spare, waits for its client, replaces it, and serves the client (S10a). */
  async #openOne(): Promise<void> {
    const { dialer, session, open } = this.#context;
    this.#opening++;
    let conn: Conn;
    try {
      conn = await dialer.dial(DIAL_TIMEOUT_MS);
      await writeAll(conn, encodeFrame({ type: "spare", version: PROTOCOL_VERSION, session }))
        .catch((error) => {
          closeQuietly(conn);
          throw error;
        });
    } catch (error) {
      log.debug(`could not open a spare data channel: ${describeError(error)}`);
      return; // the next client (or shortage) tries again
    } finally {
      this.#opening--;
    }
    if (this.#closed) return closeQuietly(conn);
    open.track(conn);
    this.#idle.add(conn);
    const reader = new FrameReader(conn);
    let payload: Uint8Array | null;
    try {
      payload = await reader.next();
    } catch {
      payload = null;
    }
    const wasIdle = this.#idle.delete(conn);
    if (payload === null || !wasIdle) {
      open.release(conn);
      // Ended under it (a proxy's idle timeout, say): opened again a moment later. A spare the
      // relay refused (an error frame) is not, so a pool above the relay's limit does not loop.
      if (wasIdle) setTimeout(() => this.#fill(), SPARE_REOPEN_MS);
      return;
    }
    let request;
    try {
      request = decodeRelayMessage(payload);
    } catch (error) {
      log.warn(`the relay sent nonsense on a spare data channel: ${describeError(error)}`);
      return open.release(conn);
    }
    if (request.type !== "client") {
      if (request.type === "error") log.warn(`the relay refused a spare: ${request.message}`);
      return open.release(conn);
    }
    this.#lastUsed = performance.now();
    this.#fill();
    await serveOnSpare(request, conn, reader.takeRest(), this.#context);
  }
}
