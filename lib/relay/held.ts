/**
 * A client held by the relay while its agent opens the data channel (S6 in docs/flow.md). The
 * relay forwards the client's first bytes with `ready`, so the service gets them without
 * another round trip: the bytes a front already read to learn the service's name, or else those
 * of a read the relay starts at once.
 */

import { type Conn, WrappedConn } from "../net.ts";

/** A client connection whose first bytes are kept for the data channel's `ready`. */
export class HeldConn extends WrappedConn {
  #buffer: Uint8Array | undefined;
  /** The held read, while it is under way or its bytes are not yet taken. */
  #read: Promise<number | null> | undefined;
  /** The held read's byte count (null at end-of-stream) once it completed. */
  #count: number | null | undefined;
  /** The held read's own buffer once its bytes are taken, for the splice to read into next. */
  #spare: Uint8Array | undefined;

  /**
   * Holds `conn`. With `head` (bytes already read from it), those are the first bytes;
   * otherwise a read of up to `readBytes` starts now.
   */
  constructor(conn: Conn, head: Uint8Array, readBytes: number) {
    super(conn);
    if (head.length > 0) {
      this.#buffer = head;
      this.#count = head.length;
      return;
    }
    this.#buffer = new Uint8Array(readBytes);
    this.#read = conn.read(this.#buffer);
    this.#read.then((count) => this.#count = count, () => {}); // a failure shows on the next read
  }

  /**
   * The bytes that have arrived so far, to go out with `ready` or early, unless there are more
   * than `most` (then none are taken). From then on, reads return what comes after them (a read
   * still under way is finished by the next `read`).
   */
  takeArrived(most = Infinity): Uint8Array {
    if (!this.#count || !this.#buffer || this.#count > most) return new Uint8Array(0);
    const arrived = this.#buffer!.subarray(0, this.#count);
    if (this.#read) this.#spare = this.#buffer;
    this.#buffer = undefined;
    this.#read = undefined;
    return arrived;
  }

  /**
   * Resolves once the held read, if one is under way, has completed (its bytes then come from
   * {@link takeArrived}, unless a `read` took them first).
   */
  arrivedLater(): Promise<void> {
    return (this.#read ?? Promise.resolve()).then(() => {}, () => {});
  }

  /**
   * The buffer of the held read, for the splice to read into rather than a new one (so a held
   * connection costs one small buffer, not two): after {@link takeArrived} took its bytes (and
   * the caller is done with them), or while the read is still under way; a read into it then
   * is that read.
   */
  takeSpareBuffer(): Uint8Array | undefined {
    const spare = this.#spare ??
      (this.#read && this.#count === undefined ? this.#buffer : undefined);
    this.#spare = undefined;
    return spare;
  }

  override read(into: Uint8Array): Promise<number | null> {
    if (!this.#buffer) return this.inner.read(into);
    const read = this.#read;
    if (read && into === this.#buffer) { // the held read, into the buffer it was given
      this.#read = this.#buffer = undefined;
      return read;
    }
    return this.#readHeld(into);
  }

  async #readHeld(into: Uint8Array): Promise<number | null> {
    const count = this.#read ? await this.#read : this.#count!;
    const buffer = this.#buffer!;
    this.#read = undefined;
    if (count === null) {
      this.#buffer = undefined;
      return null;
    }
    const taken = Math.min(count, into.length);
    into.set(buffer.subarray(0, taken));
    if (taken < count) {
      this.#buffer = buffer.subarray(taken, count);
      this.#count = count - taken;
    } else {
      this.#buffer = undefined;
    }
    return taken;
  }
}
