/**
 * A control channel (C1) as both ends see it: framed messages in and out, heartbeats answered
 * and sent automatically, and a dead peer noticed within {@link HEARTBEAT_MISSES} intervals.
 */

import { closeQuietly, type Conn } from "./net.ts";
import { whenQuiet } from "./quiet.ts";
import { HEARTBEAT_MISSES, type Message } from "./protocol.ts";
import { FrameReader, FrameWriter } from "./frames.ts";

/** One end of a control channel; `In` is the type of the messages the peer sends. */
export class ControlChannel<In extends Message> {
  /** The underlying connection. */
  readonly conn: Conn;
  #reader: FrameReader;
  #writer: FrameWriter;
  #decode: (payload: Uint8Array) => In;
  #lastHeard = performance.now();
  #heartbeat?: ReturnType<typeof setInterval>;
  #stopWatching?: () => void;
  /** Why this end closed the channel, reported by a pending or later `receive`. */
  #closedBecause?: Error;

  constructor(
    conn: Conn,
    decode: (payload: Uint8Array) => In,
    reader = new FrameReader(conn),
  ) {
    this.conn = conn;
    this.#reader = reader;
    this.#writer = new FrameWriter(conn);
    this.#decode = decode;
  }

  /** Queues a message to the peer. */
  send(message: Message): Promise<void> {
    return this.#writer.send(message);
  }

  /**
   * The next message other than a heartbeat (pings are answered here), or null when the peer
   * closed. Throws a ProtocolError for malformed input.
   */
  async receive(): Promise<In | null> {
    while (true) {
      let payload;
      try {
        payload = await this.#reader.next();
      } catch (error) {
        throw this.#closedBecause ?? error;
      }
      if (payload === null) return null;
      this.#lastHeard = performance.now();
      const message = this.#decode(payload);
      if (message.type === "ping") this.send({ type: "pong" });
      else if (message.type !== "pong") return message;
    }
  }

  /**
   * Pings the peer every `intervalMs`; when nothing at all has come from it for
   * {@link HEARTBEAT_MISSES} intervals, closes the channel and calls `onSilent` once.
   */
  startHeartbeat(intervalMs: number, onSilent: (silentMs: number) => void): void {
    const limitMs = HEARTBEAT_MISSES * intervalMs;
    this.#heartbeat = setInterval(() => this.send({ type: "ping" }), intervalMs);
    // Checked when the limit would be reached rather than on the ping ticks, so a silent peer
    // is noticed after exactly HEARTBEAT_MISSES intervals, not up to one interval later.
    this.#stopWatching = whenQuiet(() => this.#lastHeard, limitMs, (silentMs) => {
      this.close(
        `nothing heard for ${Math.round(silentMs)} ms (${HEARTBEAT_MISSES} heartbeat intervals)`,
      );
      onSilent(silentMs);
    });
  }

  /** Stops the heartbeat and closes the connection; `reason` is what `receive` then throws. */
  close(reason?: string): void {
    clearInterval(this.#heartbeat);
    this.#stopWatching?.();
    if (reason !== undefined) this.#closedBecause ??= new Error(reason);
    closeQuietly(this.conn);
  }
}
