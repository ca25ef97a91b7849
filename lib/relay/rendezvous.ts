/**
 * The rendezvous (S6–S7 and S11–S13 in docs/flow.md): a client is held under a one-time
 * connection id while its agent opens a data channel; the data channel that presents the id
 * claims it, gets `ready` with the client's first bytes, and the two are spliced until both ends
 * are done.
 */

import type { OpenConnections } from "../drain.ts";
import type { Arrival } from "../front/front.ts";
import { READY_FRAME } from "../handshake.ts";
import { createLogger } from "../log.ts";
import { concat, type Conn, writeAll } from "../net.ts";
import { formatAddr } from "../address.ts";
import { logId } from "../protocol.ts";
import { encodeFrame } from "../message_codec.ts";
import { randomToken } from "../auth.ts";
import { SMALL_BUFFER_BYTES, splice } from "../splice.ts";
import { EarlyExchanges, type EarlySession } from "./early.ts";
import type { LiveConnections } from "../admin/live.ts";
import { HeldConn } from "./held.ts";
import { type ClaimRefusal, type PendingClient, PendingTable } from "./pending.ts";

/** Default time a client is held while its agent opens the data channel; the id then expires. */
export const CONNECT_TIMEOUT_MS = 10_000;

/** How the rendezvous runs. */
export interface RendezvousOptions {
  /** Every connection the relay holds; clients and data channels are tracked and released here. */
  open: OpenConnections;
  /** How long a client waits for its data channel (default {@link CONNECT_TIMEOUT_MS}). */
  connectTimeoutMs?: number;
  /** Close a client connection once no byte has moved either way for this long (default: never). */
  idleTimeoutMs?: number;
  /** Where spliced connections are counted, for the admin API. */
  live: LiveConnections;
  /**
   * Gives a client its agent could not serve to another agent serving its service, if one can
   * (`taken`: the client's bytes that went to the first); false to turn it away.
   */
  retry?: (client: PendingClient, taken: Uint8Array, why: string) => boolean;
}

/** The agent session a client is held for. */
export interface HoldingSession {
  /** The unguessable session id that binds the agent's data channels. */
  id: string;
  agentId: string;
}

const log = createLogger("relay");

/** Held clients, and the splices of those whose data channel came. */
export class Rendezvous {
  readonly #pending = new PendingTable();
  readonly #early = new EarlyExchanges();
  readonly #open: OpenConnections;
  readonly #connectTimeoutMs: number;
  readonly #idleTimeoutMs?: number;
  readonly #live: LiveConnections;
  readonly #retry: RendezvousOptions["retry"];

  constructor(options: RendezvousOptions) {
    this.#open = options.open;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
    this.#idleTimeoutMs = options.idleTimeoutMs;
    this.#live = options.live;
    this.#retry = options.retry;
  }

  /** How long a client waits for its agent. */
  get connectTimeoutMs(): number {
    return this.#connectTimeoutMs;
  }

  /** Clients held now. */
  get size(): number {
    return this.#pending.size;
  }

  /** Resolves once no client waits for its data channel, or after `timeoutMs`; true if none. */
  settled(timeoutMs: number): Promise<boolean> {
    return this.#pending.emptied(timeoutMs);
  }

  /** Clients whose first bytes are crossing their agent's control channel now. */
  get early(): number {
    return this.#early.size;
  }

  /** Clients held for one agent session. */
  countFor(session: string): number {
    return this.#pending.countForSession(session);
  }

  /**
   * S6: holds `arrival`'s client for `session` under a fresh one-time id, which it returns for
   * the `connect` message (S7) with the client's address as logs show it. `onRelease` runs when
   * the client's connection is released.
   */
  hold(
    arrival: Arrival,
    session: HoldingSession,
    onRelease?: () => void,
  ): { token: string; client: string } {
    return this.holdAgain(this.toHold(arrival, session, onRelease));
  }

  /**
   * A client as the rendezvous holds it, its first bytes kept (`onRelease`: as for `hold`), but
   * under no id yet: for a spare data channel (lib/relay/spares.ts), or {@link holdAgain}.
   */
  toHold(arrival: Arrival, session: HoldingSession, onRelease?: () => void): PendingClient {
    const conn = new HeldConn(arrival.conn, arrival.head, SMALL_BUFFER_BYTES);
    this.#open.track(conn, onRelease);
    return {
      arrival,
      conn,
      session: session.id,
      agent: session.agentId,
      client: formatAddr(arrival.client),
      since: performance.now(),
    };
  }

  /** S6 for a client made by {@link toHold}: held under a fresh one-time id, as by `hold`. */
  holdAgain(pending: PendingClient): { token: string; client: string } {
    const token = randomToken();
    pending.logId = logId(token);
    const { client, agent } = pending;
    this.#pending.add(
      token,
      pending,
      this.#connectTimeoutMs,
      (expired) =>
        this.turnAway(
          expired,
          `agent ${agent} opened no data channel within ${this.#connectTimeoutMs} ms; closing`,
        ),
    );
    return { token, client };
  }

  /**
   * The client held under `token`, if `session` is the one it was issued to; the id is then used
   * up. A refusal says why not (the id stays valid for its rightful session).
   */
  claim(token: string, session: string): PendingClient | ClaimRefusal {
    return this.#pending.claim(token, session);
  }

  /**
   * S7b: sends the first bytes of the client held under `token` to `session`'s agent early, over
   * its control channel, once they are in (after the `connect` sent next), if the session has an
   * early-data window and the client's front does not answer it first. Returns the window, 0
   * for none.
   */
  sendEarly(token: string, session: EarlySession): number {
    const client = this.#pending.peek(token);
    if (!client) return 0;
    return this.#early.begin(client, token, session, () => this.#pending.peek(token) === client);
  }

  /** S9b: the service's early bytes for the client held under `token`, from `session`'s agent. */
  receivedEarly(session: string, token: string, bytes: Uint8Array): void {
    if (this.#early.received(session, token, bytes)) return;
    const client = this.#pending.take(token);
    if (client) this.turnAway(client, "the agent sent more early bytes than its window; closing");
  }

  /** S8: the agent will not serve the client held under `token`. */
  refused(token: string, session: string, reason: string): void {
    const client = this.#pending.claim(token, session);
    if (typeof client === "string") return;
    this.giveUp(client, `agent ${client.agent} refused: ${reason}`);
  }

  /** Gives up on the clients held for `session`, whose agent went away. */
  dropSession(session: string, agentId: string): void {
    this.#early.dropSession(session);
    for (const client of this.#pending.takeSession(session)) {
      this.giveUp(client, `agent ${agentId} went away`);
    }
  }

  /**
   * `client`'s agent cannot serve it (`why`): it goes to another agent of its service if one can
   * take it and no byte of the service reached it yet (`taken`: its bytes that went to the
   * agent), or else is turned away.
   */
  giveUp(client: PendingClient, why: string, taken = client.early?.taken): void {
    const answered = (client.early?.replies.received ?? 0) > 0;
    this.#early.end(client);
    if (!answered && this.#retry?.(client, taken ?? new Uint8Array(0), why)) return;
    this.turnAway(client, `${why}; closing`);
  }

  /**
   * `client` again, to be held for `session` instead of the one it was held for, with `taken`
   * (its bytes that went there) to be read first again.
   */
  rehold(client: PendingClient, taken: Uint8Array, session: HoldingSession): PendingClient {
    const conn = new HeldConn(client.conn, taken, SMALL_BUFFER_BYTES);
    this.#open.replace(client.conn, conn);
    const { id, agentId } = session;
    return { ...client, conn, session: id, agent: agentId, early: undefined, logId: undefined };
  }

  /**
   * S11: sends `ready` and the client's first bytes on `data`, the claimed client's data channel;
   * once the `sentEarly` bytes the agent sent over its control channel are written to the client,
   * writes the front's welcome and `rest` (bytes that came after the agent's `data` frame) to the
   * client, and splices the two. Rejects, with both released, if a write fails.
   */
  async join(client: PendingClient, data: Conn, rest: Uint8Array, sentEarly = 0): Promise<void> {
    const arrived = client.conn.takeArrived();
    const { arrival } = client;
    const welcome = arrival.front.welcome?.(arrival);
    const early = client.early;
    const ready = early?.sent ? encodeFrame({ type: "ready", early: early.sent }) : READY_FRAME;
    try {
      await writeAll(data, concat(ready, arrived));
      await this.#early.finish(client, sentEarly, this.#connectTimeoutMs);
      const toClient = welcome ? concat(welcome, rest) : rest;
      if (toClient.length > 0) await writeAll(client.conn, toClient);
    } catch (error) {
      this.#open.release(client.conn);
      this.#open.release(data);
      throw error;
    }
    this.splice(client, data, {
      fromClient: arrived.length + (early?.sent ?? 0),
      toClient: rest.length + sentEarly,
    });
  }

  /**
   * Splices a client with its data channel until both ends are done, then logs the connection
   * (`moved`: bytes that went across before the splice) and releases both. Not awaited by
   * `join`: the frames of the handshake would stay alive as long as the connection.
   */
  splice(
    { conn, client, arrival, agent, since, logId }: PendingClient,
    data: Conn,
    moved: { fromClient: number; toClient: number },
  ): void {
    const { service } = arrival;
    const idleTimeoutMs = this.#idleTimeoutMs;
    const live = this.#live.start({ service, agent, client, since }, moved);
    const smallBufferA = conn.takeSpareBuffer();
    splice(conn, data, { idleTimeoutMs, smallBufferA, counters: live.spliced }).then((spliced) => {
      this.#live.end(live);
      log.info(
        `connection closed${spliced.idle ? ` (idle for ${idleTimeoutMs} ms)` : ""}: ` +
          `conn=${logId} service=${service} agent=${agent} client=${client} ` +
          `from_client=${spliced.aToB + moved.fromClient} ` +
          `to_client=${spliced.bToA + moved.toClient} ` +
          `duration_ms=${Math.round(performance.now() - since)}`,
      );
      this.#open.release(conn);
      this.#open.release(data);
    });
  }

  /** Turns `client` away: logged with `why`, and told by its front that it is unreachable. */
  turnAway(client: PendingClient, why: string): void {
    this.#early.end(client);
    const conn = client.logId ? ` (conn=${client.logId})` : "";
    log.warn(`client ${client.client} for service ${client.arrival.service}: ${why}${conn}`);
    this.#open.release(client.conn, false);
    client.arrival.front.refuse(client.arrival, "unreachable");
  }
}
