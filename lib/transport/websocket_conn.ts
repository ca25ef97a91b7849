/**
 * A {@link Conn} carried in WebSocket frames (RFC 6455), so that agent channels pass where only
 * HTTP does. Each channel is its own WebSocket; its bytes travel as binary messages, whatever
 * their boundaries (the frames: lib/transport/websocket_frames.ts).
 *
 * WebSocket has no half-close, so porthole defines one: an empty binary message ends the sender's
 * direction (`closeWrite`), and the peer's `read` returns null; the other direction goes on. Once
 * both directions have ended, each side sends a Close frame (1000) and ends its TCP direction, so
 * proxies in between see a clean close. A Close frame received ends reading and writing alike.
 *
 * Reading costs about what reading the connection under it does: each read of it is one read of
 * the caller's buffer, from which the frame headers are cut out in place (unmasking as it goes),
 * rather than a read per header.
 */

import { concat, type Conn, writeAll } from "../net.ts";
import {
  BINARY,
  CLOSE,
  MAX_CONTROL_BYTES,
  MAX_HEADER_BYTES,
  MAX_SENT_FRAME_BYTES,
  parseHeader,
  PING,
  PONG,
  sendFrame,
  WebSocketError,
  xorWithKey,
} from "./websocket_frames.ts";

export { WebSocketError };

/** A caller's buffer smaller than this is read through one of the connection's own. */
const MIN_DIRECT_READ_BYTES = 2 * (MAX_HEADER_BYTES + MAX_CONTROL_BYTES);
const NORMAL_CLOSURE = new Uint8Array([0x03, 0xe8]); // 1000

/** The WebSocket side of a connection whose upgrade has completed. */
export class WebSocketConn implements Conn {
  readonly localAddr: Deno.Addr;
  readonly remoteAddr: Deno.Addr;
  #inner: Conn;
  #isClient: boolean;
  /** Raw bytes read but not parsed yet: what came with the upgrade, or a header cut in two. */
  #stash?: Uint8Array;
  /** Whether the stash is an incomplete header, which only more bytes can complete. */
  #stashIncomplete = false;
  /** Payload already decoded that a small buffer could not take. */
  #ready?: Uint8Array;
  #scratch?: Uint8Array;
  /** Payload bytes left in the data frame being read, its mask key, and the next key byte. */
  #payloadLeft = 0;
  #key?: Uint8Array;
  #keyAt = 0;
  #messageBytes = 0;
  #readEnded = false;
  #writeEnded = false;
  #closeSent = false;
  #writes: Promise<void> = Promise.resolve();

  /**
   * `inner` after the upgrade; `isClient` when this side sent the upgrade request (it masks);
   * `prefix`: bytes already read beyond the upgrade's head.
   */
  constructor(inner: Conn, isClient: boolean, prefix: Uint8Array = new Uint8Array(0)) {
    this.#inner = inner;
    this.#isClient = isClient;
    this.localAddr = inner.localAddr;
    this.remoteAddr = inner.remoteAddr;
    if (prefix.length > 0) this.#stash = prefix.slice();
  }

  /** Reads payload bytes; null once the peer has ended its direction or closed. */
  async read(buffer: Uint8Array): Promise<number | null> {
    while (true) {
      if (this.#ready) return this.#deliverReady(buffer);
      if (this.#readEnded) return null;
      const into = buffer.length >= MIN_DIRECT_READ_BYTES
        ? buffer
        : (this.#scratch ??= new Uint8Array(MIN_DIRECT_READ_BYTES));
      const count = this.#strip(into, await this.#fill(into));
      if (count === 0) continue;
      if (into === buffer) return count;
      this.#ready = into.slice(0, count);
    }
  }

  /** Sends up to {@link MAX_SENT_FRAME_BYTES} of `data` as one binary frame. */
  async write(data: Uint8Array): Promise<number> {
    if (this.#writeEnded || this.#closeSent) {
      throw new Deno.errors.BrokenPipe("the WebSocket's sending direction has ended");
    }
    if (data.length === 0) return 0; // an empty frame would end the direction
    const count = Math.min(data.length, MAX_SENT_FRAME_BYTES);
    await this.#send(BINARY, data.subarray(0, count));
    return count;
  }

  /** Ends this side's direction with an empty binary message (porthole's half-close). */
  async closeWrite(): Promise<void> {
    if (this.#writeEnded) return;
    this.#writeEnded = true;
    await this.#send(BINARY, new Uint8Array(0));
    if (this.#readEnded) await this.#sendClose();
  }

  /** Releases the connection at once. */
  close(): void {
    this.#inner.close();
  }

  #deliverReady(buffer: Uint8Array): number {
    const ready = this.#ready!;
    const count = Math.min(buffer.length, ready.length);
    buffer.set(ready.subarray(0, count));
    this.#ready = count < ready.length ? ready.subarray(count) : undefined;
    return count;
  }

  /** Puts raw bytes at the start of `into`: the stash's, then (unless they suffice) a read's. */
  async #fill(into: Uint8Array): Promise<number> {
    let count = 0;
    if (this.#stash) {
      count = Math.min(this.#stash.length, into.length);
      into.set(this.#stash.subarray(0, count));
      this.#stash = count < this.#stash.length ? this.#stash.subarray(count) : undefined;
      if (!this.#stashIncomplete || count === into.length) return count;
    }
    const read = await this.#inner.read(into.subarray(count));
    if (read === null) {
      throw new WebSocketError(
        count > 0 || this.#payloadLeft > 0
          ? "the connection ended inside a WebSocket frame"
          : "the WebSocket ended without a Close frame",
      );
    }
    return count + read;
  }

  /**
   * Cuts the frame headers out of the raw bytes `bytes[0..end)`, unmasking the payload and moving
   * it to the start; handles control frames; stashes an incomplete header. Returns the payload's
   * length.
   */
  #strip(bytes: Uint8Array, end: number): number {
    this.#stashIncomplete = false;
    let out = 0, at = 0;
    while (at < end) {
      if (this.#payloadLeft > 0) {
        const take = Math.min(this.#payloadLeft, end - at);
        if (this.#key) {
          xorWithKey(bytes.subarray(at, at + take), this.#key, this.#keyAt);
          this.#keyAt = (this.#keyAt + take) & 3;
        }
        if (out !== at) bytes.copyWithin(out, at, at + take);
        out += take;
        at += take;
        this.#payloadLeft -= take;
        continue;
      }
      if (this.#readEnded) break; // what follows the end (a Close frame) is not read
      const header = parseHeader(bytes, at, end, !this.#isClient);
      if (!header || (header.opcode >= CLOSE && end - at < header.size + header.length)) {
        const rest = this.#stash; // what of the stash did not fit, which may complete it
        this.#stash = rest ? concat(bytes.subarray(at, end), rest) : bytes.slice(at, end);
        this.#stashIncomplete = !rest;
        break;
      }
      at += header.size;
      if (header.opcode >= CLOSE) {
        const payload = bytes.slice(at, at + header.length);
        if (header.key) xorWithKey(payload, header.key, 0);
        this.#control(header.opcode, payload);
        at += header.length;
        continue;
      }
      if (header.opcode === BINARY) this.#messageBytes = 0;
      this.#messageBytes += header.length;
      this.#payloadLeft = header.length;
      this.#key = header.key;
      this.#keyAt = 0;
      if (header.fin && this.#messageBytes === 0) this.#peerEnded();
    }
    return out;
  }

  /** A ping is answered with a pong, a close ends both directions, a pong is dropped. */
  #control(opcode: number, payload: Uint8Array): void {
    if (opcode === PING && !this.#closeSent) this.#send(PONG, payload).catch(() => {});
    if (opcode === CLOSE) {
      this.#writeEnded = true;
      this.#peerEnded();
    }
  }

  #peerEnded(): void {
    this.#readEnded = true;
    if (this.#writeEnded) this.#sendClose().catch(() => {});
  }

  /** Both directions are over: a Close frame, then the TCP (or TLS) direction ends. */
  async #sendClose(): Promise<void> {
    if (this.#closeSent) return;
    this.#closeSent = true;
    await this.#send(CLOSE, NORMAL_CLOSURE);
    await this.#inner.closeWrite().catch(() => {});
  }

  /** Queues one frame; frames from concurrent calls never interleave. */
  #send(opcode: number, payload: Uint8Array): Promise<void> {
    const sent = this.#writes.then(() =>
      sendFrame(opcode, payload, this.#isClient, (frame) => writeAll(this.#inner, frame))
    );
    this.#writes = sent.catch(() => {});
    return sent;
  }
}
