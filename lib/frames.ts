/**
 * Frames on a connection: reading them (keeping what comes after the last one, for a data
 * channel's raw bytes) and writing them in order. The messages and limits are lib/protocol.ts'.
 */

import { type Conn, writeAll } from "./net.ts";
import { MAX_FRAME_BYTES, type Message, ProtocolError } from "./protocol.ts";
import { encodeFrame } from "./message_codec.ts";

/**
 * Reads length-prefixed frames from a connection. Bytes that arrive after a frame in the same
 * read are kept, and {@link FrameReader.takeRest} hands them over when the connection turns
 * into a raw data channel.
 */
export class FrameReader {
  #conn: Conn;
  #buffer = new Uint8Array(256);
  #start = 0;
  #end = 0;

  constructor(conn: Conn) {
    this.#conn = conn;
  }

  /**
   * The first `count` bytes not yet taken, reading until they are there (fewer if the peer ends
   * first), without taking them: to tell another protocol from frames by its first bytes.
   */
  async peek(count: number): Promise<Uint8Array> {
    while (this.#end - this.#start < count && await this.#fill());
    return this.#buffer.subarray(this.#start, Math.min(this.#end, this.#start + count));
  }

  /** The next frame's payload, or null when the peer closed cleanly between frames. */
  async next(): Promise<Uint8Array | null> {
    while (this.#end - this.#start < 4) {
      if (!(await this.#fill())) return this.#eof();
    }
    const length = new DataView(this.#buffer.buffer, this.#start, 4).getUint32(0);
    if (length > MAX_FRAME_BYTES) {
      const first = this.#buffer[this.#start];
      if ((first === 0x15 || first === 0x16) && this.#buffer[this.#start + 1] === 0x03) {
        throw new ProtocolError(
          "received TLS where porthole frames were expected: one side runs with --insecure " +
            "and the other does not; use TLS on both sides (recommended) or --insecure on both",
        );
      }
      throw new ProtocolError(
        `frame of ${length} bytes exceeds the limit of ${MAX_FRAME_BYTES}`,
      );
    }
    while (this.#end - this.#start < 4 + length) {
      if (!(await this.#fill())) return this.#eof();
    }
    const payload = this.#buffer.slice(this.#start + 4, this.#start + 4 + length);
    this.#start += 4 + length;
    return payload;
  }

  /** Bytes received beyond the last frame returned; the reader must not be used afterwards. */
  takeRest(): Uint8Array {
    const rest = this.#buffer.slice(this.#start, this.#end);
    this.#start = this.#end = 0;
    return rest;
  }

  #eof(): null {
    if (this.#end > this.#start) {
      throw new ProtocolError("connection closed in the middle of a frame");
    }
    return null;
  }

  async #fill(): Promise<boolean> {
    if (this.#start > 0) {
      this.#buffer.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    if (this.#end === this.#buffer.length) {
      const grown = new Uint8Array(Math.min(this.#buffer.length * 4, MAX_FRAME_BYTES + 4));
      grown.set(this.#buffer);
      this.#buffer = grown;
    }
    const count = await this.#conn.read(this.#buffer.subarray(this.#end));
    if (count === null) return false;
    this.#end += count;
    return true;
  }
}

/**
 * Writes frames to a connection one after another, so messages sent from concurrent tasks never
 * interleave. A failed write closes nothing; it shows up on the reading side.
 */
export class FrameWriter {
  #conn: Conn;
  #tail: Promise<void> = Promise.resolve();

  constructor(conn: Conn) {
    this.#conn = conn;
  }

  /** Queues a message; the promise settles once it is written (or failed). */
  send(message: Message): Promise<void> {
    const frame = encodeFrame(message);
    this.#tail = this.#tail.then(() => writeAll(this.#conn, frame)).catch(() => {});
    return this.#tail;
  }
}
