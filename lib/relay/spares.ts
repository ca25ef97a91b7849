/**
 * Spare data channels on the relay (S9a, S7a and S10a in docs/flow.md; their messages in
 * lib/protocol.ts): data channels an agent opened ahead, bound to its session but to no client,
 * each given to one of the session's next clients. Such a client waits one round trip of the
 * agent-relay link (its first bytes go out with `client`; the service's answer comes back right
 * after `accept`), not the three or four of the agent dialling a data channel first.
 *
 * A spare that ends or speaks before it is given a client is released. One that is gone when it
 * is given one hands the client back to the classic flow (`connect` over the control channel),
 * with the bytes it had taken.
 */

import type { OpenConnections } from "../drain.ts";
import type { FrameReader } from "../frames.ts";
import { closeQuietly, concat, type Conn, describeError, writeAll } from "../net.ts";
import { logId } from "../protocol.ts";
import { decodeAgentMessage, encodeFrame } from "../message_codec.ts";
import { createLogger } from "../log.ts";
import type { PendingClient } from "./pending.ts";
import type { HoldingSession, Rendezvous } from "./rendezvous.ts";
import { randomToken } from "../auth.ts";

const log = createLogger("relay");

/** A spare as the relay keeps it: its first frame is read from the start, to see it end. */
interface Spare {
  conn: Conn;
  reader: FrameReader;
  answer: Promise<Uint8Array | null>;
}

/** Each session's spare data channels. */
export class Spares {
  #bySession = new Map<string, Spare[]>();
  #open: OpenConnections;
  #rendezvous: Rendezvous;

  constructor(open: OpenConnections, rendezvous: Rendezvous) {
    this.#open = open;
    this.#rendezvous = rendezvous;
  }

  /** Spares kept for `session` now (all sessions' without one). */
  count(session?: string): number {
    if (session !== undefined) return this.#bySession.get(session)?.length ?? 0;
    return [...this.#bySession.values()].reduce((sum, list) => sum + list.length, 0);
  }

  /** S9a: keeps `conn` (its `spare` frame read by `reader`) for `session`'s next client. */
  add({ id, agentId }: HoldingSession, conn: Conn, reader: FrameReader): void {
    const spare: Spare = { conn, reader, answer: reader.next() };
    const list = this.#bySession.get(id) ?? [];
    list.push(spare);
    this.#bySession.set(id, list);
    log.debug(`agent ${agentId}: a spare data channel is ready (${this.count(id)} kept)`);
    const unused = () => {
      if (!this.#remove(id, spare)) return;
      this.#open.release(conn);
      log.debug(`agent ${agentId}: a spare data channel ended unused (${this.count(id)} kept)`);
    };
    spare.answer.then(unused, unused);
  }

  /** Releases the spares of `session`, which ended. */
  dropSession(session: string): void {
    for (const spare of this.#bySession.get(session) ?? []) this.#open.release(spare.conn);
    this.#bySession.delete(session);
  }

  /**
   * S7a: gives `client` (made by the rendezvous' `toHold` for one of the sessions here; `to`:
   * the relay address it dialled) to a spare of its session. False when the session has none:
   * the caller asks the agent over the control channel. `classic` does that for a client whose
   * spare turned out to be gone.
   */
  handOver(client: PendingClient, to: string, classic: (client: PendingClient) => void): boolean {
    const list = this.#bySession.get(client.session);
    const spare = list?.pop();
    if (!spare) return false;
    if (list!.length === 0) this.#bySession.delete(client.session);
    this.#serve(client, spare, to, classic);
    return true;
  }

  /** Sends `client` and the first bytes, forwards what else comes first, awaits the answer. */
  async #serve(
    client: PendingClient,
    spare: Spare,
    to: string,
    classic: (c: PendingClient) => void,
  ) {
    const { arrival, conn } = client;
    const id = randomToken();
    client.logId = logId(id);
    const frame = encodeFrame({
      type: "client",
      service: arrival.service,
      conn: id,
      client: client.client,
      to,
    });
    // The client's bytes go ahead of the answer: its first read's too, should it come first.
    const taken: Uint8Array[] = [];
    let answered = false, writeFailed = false, timedOut = false;
    const forward = (bytes: Uint8Array, withFrame = false) => {
      if (bytes.length === 0 && !withFrame) return Promise.resolve();
      if (writeFailed) return Promise.resolve();
      taken.push(bytes);
      return writeAll(spare.conn, withFrame ? concat(frame, bytes) : bytes)
        .catch(() => void (writeFailed = true));
    };
    let writing = forward(conn.takeArrived(), true);
    conn.arrivedLater().then(() => {
      if (answered) return; // the splice reads them now
      const bytes = conn.takeArrived();
      writing = writing.then(() => forward(bytes));
    });
    const timer = setTimeout(() => {
      timedOut = true;
      closeQuietly(spare.conn);
    }, this.#rendezvous.connectTimeoutMs);
    const answer = await spare.answer.catch(() => null).finally(() => clearTimeout(timer));
    answered = true;
    await writing;
    if (answer === null && !timedOut) {
      return this.#backToClassic(client, spare, concat(...taken), classic);
    }
    this.#answered(client, spare, answer, taken);
  }

  /** S10a: the agent's answer on the spare decides: spliced, or turned away. */
  async #answered(
    client: PendingClient,
    spare: Spare,
    answer: Uint8Array | null,
    taken: Uint8Array[],
  ): Promise<void> {
    const why = (problem: string) => {
      this.#open.release(spare.conn);
      this.#rendezvous.turnAway(client, `agent ${client.agent} ${problem}`);
    };
    if (answer === null) return why("did not answer on a spare data channel in time");
    let message;
    try {
      message = decodeAgentMessage(answer);
    } catch (error) {
      return why(`sent nonsense on a spare data channel: ${describeError(error)}`);
    }
    if (message.type === "refuse") {
      this.#open.release(spare.conn);
      return this.#rendezvous.giveUp(
        client,
        `agent ${client.agent} refused: ${message.reason}`,
        concat(...taken),
      );
    }
    if (message.type !== "accept") return why(`sent "${message.type}" on a spare data channel`);
    const { arrival, conn } = client;
    const fromService = spare.reader.takeRest();
    const welcome = arrival.front.welcome?.(arrival);
    try {
      const toClient = welcome ? concat(welcome, fromService) : fromService;
      if (toClient.length > 0) await writeAll(conn, toClient);
    } catch {
      this.#open.release(conn);
      this.#open.release(spare.conn);
      return;
    }
    const fromClient = taken.reduce((sum, bytes) => sum + bytes.length, 0);
    this.#rendezvous.splice(client, spare.conn, { fromClient, toClient: fromService.length });
  }

  /** The spare was gone: the client goes the classic way, with the bytes it had taken. */
  #backToClassic(
    client: PendingClient,
    spare: Spare,
    taken: Uint8Array,
    classic: (client: PendingClient) => void,
  ): void {
    this.#open.release(spare.conn);
    classic(this.#rendezvous.rehold(client, taken, { id: client.session, agentId: client.agent }));
  }

  #remove(session: string, spare: Spare): boolean {
    const list = this.#bySession.get(session);
    const at = list?.indexOf(spare) ?? -1;
    if (at < 0) return false;
    list!.splice(at, 1);
    if (list!.length === 0) this.#bySession.delete(session);
    return true;
  }
}
