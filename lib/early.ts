/**
 * Early data (its messages in lib/protocol.ts): a connection's bytes that cross the control
 * channel while its data channel is still being opened, so a client's first exchange with its
 * service takes one round trip of the agent-relay link, not the three or four of the data
 * channel's set-up. An {@link EarlyPump} reads one end and sends what it reads as `early` frames
 * until the data channel is up or its window is spent; an {@link EarlySink} writes the peer's
 * `early` frames, in order, to the other end; {@link EarlySinks} finds a frame's sink. The data
 * channel's `data` and `ready` frames carry the pumps' counts, and each end waits for its sink to
 * have written that many bytes before the data channel's bytes follow them.
 */

import { type Conn, WrappedConn, writeAll } from "./net.ts";
import { EARLY_CHUNK_BYTES } from "./protocol.ts";
import { SMALL_BUFFER_BYTES } from "./splice.ts";

/** The peer's early bytes for one connection, written in order to where they go. */
export class EarlySink {
  readonly #window: number;
  #received = 0;
  #written = 0;
  #target?: Conn;
  #queued: Uint8Array[] = [];
  #tail: Promise<void> = Promise.resolve();
  #failure?: Error;
  #waiters: { count: number; settle: (failure?: Error) => void }[] = [];

  /** A sink for at most `window` bytes, written to `target` (or to the one {@link attach}ed). */
  constructor(window: number, target?: Conn) {
    this.#window = window;
    this.#target = target;
  }

  /** Bytes that came so far. */
  get received(): number {
    return this.#received;
  }

  /** Takes bytes that came early; false, and nothing taken, when they overrun the window. */
  push(bytes: Uint8Array): boolean {
    if (this.#received + bytes.length > this.#window) return false;
    this.#received += bytes.length;
    if (this.#target) this.#write(bytes);
    else this.#queued.push(bytes);
    return true;
  }

  /** Writes to `target` from now on, beginning with the bytes that came before. */
  attach(target: Conn): void {
    this.#target = target;
    for (const bytes of this.#queued) this.#write(bytes);
    this.#queued = [];
  }

  /**
   * Resolves once `count` bytes have come and been written. Rejects if they cannot be (more
   * than the window, a write failed, the sink was failed) or `timeoutMs` passes first.
   */
  until(count: number, timeoutMs: number): Promise<void> {
    if (count > this.#window) {
      return Promise.reject(new Error(`${count} early bytes exceed the window of ${this.#window}`));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => waiter.settle(new Error(`${count} early bytes did not come within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const waiter = {
        count,
        settle: (failure?: Error) => {
          clearTimeout(timer);
          this.#waiters = this.#waiters.filter((other) => other !== waiter);
          if (failure) reject(failure);
          else resolve();
        },
      };
      this.#waiters.push(waiter);
      this.#settle();
    });
  }

  /** Fails the sink (its control channel ended): nothing more is written, waiters reject. */
  fail(failure: Error): void {
    this.#failure ??= failure;
    this.#settle();
  }

  #write(bytes: Uint8Array): void {
    this.#tail = this.#tail.then(async () => {
      if (this.#failure) return;
      await writeAll(this.#target!, bytes);
      this.#written += bytes.length;
      this.#settle();
    }).catch((error) => this.fail(error));
  }

  #settle(): void {
    for (const waiter of [...this.#waiters]) {
      if (this.#failure) waiter.settle(this.#failure);
      else if (this.#written >= waiter.count) waiter.settle();
    }
  }
}

/** Where a control channel's `early` frames go: each connection's sink, by connection id. */
export class EarlySinks {
  readonly #sinks = new Map<string, { sink: EarlySink; owner: string }>();

  /** Sinks open now. */
  get size(): number {
    return this.#sinks.size;
  }

  /** Opens `sink` for connection `conn`, whose frames only `owner` (a session id) may send. */
  open(conn: string, sink: EarlySink, owner = ""): void {
    this.#sinks.set(conn, { sink, owner });
  }

  /**
   * Gives an `early` frame to its sink. Says what was wrong otherwise: no such connection (it
   * may have ended; the frame is dropped), or the frame overran the connection's window.
   */
  push(conn: string, bytes: Uint8Array, owner = ""): "unknown" | "overrun" | undefined {
    const entry = this.#sinks.get(conn);
    if (!entry || entry.owner !== owner) return "unknown";
    return entry.sink.push(bytes) ? undefined : "overrun";
  }

  /** Closes connection `conn`'s sink; later frames for it are dropped. */
  close(conn: string): void {
    this.#sinks.get(conn)?.sink.fail(new Error("the connection ended"));
    this.#sinks.delete(conn);
  }

  /** Fails and closes every sink of `owner` (its control channel ended) with `failure`. */
  dropOwner(owner: string, failure: Error): void {
    for (const [conn, entry] of [...this.#sinks]) {
      if (entry.owner !== owner) continue;
      entry.sink.fail(failure);
      this.#sinks.delete(conn);
    }
  }
}

/** A read under way when a pump stopped, and the buffer it reads into. */
interface HeldRead {
  read: Promise<number | null>;
  buffer: Uint8Array;
}

/** Reads one end of a connection and sends what it reads early, until stopped. */
export class EarlyPump {
  readonly #conn: Conn;
  readonly #send: (bytes: Uint8Array) => Promise<void>;
  readonly #window: number;
  #sent = 0;
  #stopped = false;
  #stop!: () => void;
  readonly #stopping = new Promise<void>((resolve) => this.#stop = resolve);
  /** The read under way, or the last one if it found the end. */
  #reading?: HeldRead;

  /** Starts reading `conn`, handing each read to `send`, up to `window` bytes in all. */
  constructor(conn: Conn, send: (bytes: Uint8Array) => Promise<void>, window: number) {
    this.#conn = conn;
    this.#send = send;
    this.#window = window;
    this.#pump();
  }

  /**
   * Stops sending (the data channel is up): how many bytes went early, and the connection to
   * read the rest from, whose first read finishes the one under way.
   */
  stop(): { sent: number; conn: Conn } {
    this.#stopped = true;
    this.#stop();
    const held = this.#reading;
    return { sent: this.#sent, conn: held ? new ReadAheadConn(this.#conn, held) : this.#conn };
  }

  async #pump(): Promise<void> {
    // A small first read, as a held connection's should be; a full one means more is coming.
    let size = SMALL_BUFFER_BYTES;
    while (!this.#stopped && this.#sent < this.#window) {
      const buffer = new Uint8Array(Math.min(size, this.#window - this.#sent));
      const reading = { read: this.#conn.read(buffer), buffer };
      this.#reading = reading;
      const count = await Promise.race([reading.read.catch(() => null), this.#stopping]);
      // Stopped, the read is stop()'s to hand on; at its end or failed, the data channel's
      // reads are to see that.
      if (this.#stopped || !count) return;
      this.#reading = undefined;
      this.#sent += count;
      if (count === buffer.length) size = EARLY_CHUNK_BYTES;
      await this.#send(buffer.subarray(0, count));
    }
  }
}

/** A connection whose first read finishes a read that was under way. */
class ReadAheadConn extends WrappedConn {
  #held?: HeldRead;
  #left?: Uint8Array;

  constructor(conn: Conn, held: HeldRead) {
    super(conn);
    this.#held = held;
  }

  override async read(into: Uint8Array): Promise<number | null> {
    if (this.#held) {
      const { read, buffer } = this.#held;
      this.#held = undefined;
      const count = await read;
      if (count === null) return null;
      this.#left = buffer.subarray(0, count);
    }
    if (!this.#left) return this.inner.read(into);
    const taken = Math.min(into.length, this.#left.length);
    into.set(this.#left.subarray(0, taken));
    this.#left = taken < this.#left.length ? this.#left.subarray(taken) : undefined;
    return taken;
  }
}
