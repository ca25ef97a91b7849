/**
 * A {@link Conn} carried in WebSocket frames (RFC 6455), so that agent channels pass where only
 * HTTP does. Each channel is its own WebSocket; its bytes travel as binary messages, whatever
 * their boundaries.
 *
 * WebSocket has no half-close, so porthole defines one: an empty binary message ends the sender's
 * direction (`closeWrite`), and the peer's `read` returns null; the other direction goes on. Once
 * both directions have ended, each side sends a Close frame (1000) and ends its TCP direction, so
 * proxies in between see a clean close. A Close frame received ends reading and writing alike.
 *
 * Frames from the agent (the client) are masked, as the RFC requires, with a fresh random key
 * each; the relay's are not. Pings are answered; text frames and extensions are refused.
 */

import { type Conn, writeAll } from "../net.ts";

const CONTINUATION = 0x0, BINARY = 0x2, CLOSE = 0x8, PING = 0x9, PONG = 0xa;
/** The largest payload a control frame may carry (RFC 6455 §5.5). */
const MAX_CONTROL_BYTES = 125;
/** The largest payload of one frame this side sends; a longer write takes several frames. */
export const MAX_SENT_FRAME_BYTES = 64 * 1024;
/** Bytes read ahead to find frame headers; payload beyond them is read straight into the caller's buffer. */
const INPUT_BYTES = 16 * 1024;
/** Where a sent frame's payload starts in its buffer: aligned, with room for the longest header. */
const PAYLOAD_AT = 16;
const NORMAL_CLOSURE = new Uint8Array([0x03, 0xe8]); // 1000

/** A WebSocket frame that breaks the protocol or porthole's use of it. */
export class WebSocketError extends Error {
  override name = "WebSocketError";
}

/** The WebSocket side of a connection whose upgrade has completed. */
export class WebSocketConn implements Conn {
  readonly localAddr: Deno.Addr;
  readonly remoteAddr: Deno.Addr;
  #inner: Conn;
  #isClient: boolean;
  #input: Uint8Array;
  #start = 0;
  #end = 0;
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
    this.#input = new Uint8Array(Math.max(INPUT_BYTES, prefix.length));
    this.#input.set(prefix);
    this.#end = prefix.length;
  }

  /** Reads payload bytes; null once the peer has ended its direction or closed. */
  async read(buffer: Uint8Array): Promise<number | null> {
    while (this.#payloadLeft === 0) {
      if (this.#readEnded) return null;
      await this.#readHeader();
    }
    const want = Math.min(buffer.length, this.#payloadLeft);
    let count: number;
    if (this.#end > this.#start) {
      count = Math.min(want, this.#end - this.#start);
      buffer.set(this.#input.subarray(this.#start, this.#start + count));
      this.#start += count;
    } else {
      const read = await this.#inner.read(buffer.subarray(0, want));
      if (read === null) throw new WebSocketError("the connection ended inside a WebSocket frame");
      count = read;
    }
    if (this.#key) {
      xorWithKey(buffer.subarray(0, count), this.#key, this.#keyAt);
      this.#keyAt = (this.#keyAt + count) & 3;
    }
    this.#payloadLeft -= count;
    return count;
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

  /** Reads one frame header, and whole control frames; sets up a data frame's payload. */
  async #readHeader(): Promise<void> {
    await this.#need(2);
    const first = this.#input[this.#start], second = this.#input[this.#start + 1];
    const fin = (first & 0x80) !== 0, opcode = first & 0x0f, masked = (second & 0x80) !== 0;
    const shortLength = second & 0x7f;
    const lengthBytes = shortLength === 126 ? 2 : shortLength === 127 ? 8 : 0;
    const headerBytes = 2 + lengthBytes + (masked ? 4 : 0);
    await this.#need(headerBytes);
    const view = new DataView(this.#input.buffer, this.#start + 2, lengthBytes);
    const length = lengthBytes === 0
      ? shortLength
      : lengthBytes === 2
      ? view.getUint16(0)
      : Number(view.getBigUint64(0));
    const key = masked
      ? this.#input.slice(this.#start + 2 + lengthBytes, this.#start + headerBytes)
      : undefined;
    this.#start += headerBytes;
    if ((first & 0x70) !== 0) throw new WebSocketError("WebSocket extensions are not supported");
    if (masked === this.#isClient) {
      throw new WebSocketError(
        this.#isClient
          ? "the relay sent a masked WebSocket frame"
          : "an unmasked frame from an agent",
      );
    }
    if (opcode >= CLOSE) return await this.#control(opcode, fin, length, key);
    if (opcode !== BINARY && opcode !== CONTINUATION) {
      throw new WebSocketError(`WebSocket frames of opcode ${opcode} are not porthole's`);
    }
    if (!Number.isSafeInteger(length)) throw new WebSocketError("a WebSocket frame too long");
    if (opcode === BINARY) this.#messageBytes = 0;
    this.#messageBytes += length;
    this.#payloadLeft = length;
    this.#key = key;
    this.#keyAt = 0;
    if (fin && this.#messageBytes === 0) await this.#peerEnded();
  }

  /** A ping is answered with a pong, a close ends both directions, a pong is dropped. */
  async #control(opcode: number, fin: boolean, length: number, key?: Uint8Array): Promise<void> {
    if (!fin || length > MAX_CONTROL_BYTES) {
      throw new WebSocketError("a fragmented or oversized WebSocket control frame");
    }
    await this.#need(length);
    const payload = this.#input.slice(this.#start, this.#start + length);
    this.#start += length;
    if (key) xorWithKey(payload, key, 0);
    if (opcode === PING && !this.#closeSent) await this.#send(PONG, payload);
    if (opcode === CLOSE) {
      this.#writeEnded = true;
      await this.#peerEnded();
    }
  }

  async #peerEnded(): Promise<void> {
    this.#readEnded = true;
    if (this.#writeEnded) await this.#sendClose();
  }

  /** Both directions are over: a Close frame, then the TCP (or TLS) direction ends. */
  async #sendClose(): Promise<void> {
    if (this.#closeSent) return;
    this.#closeSent = true;
    await this.#send(CLOSE, NORMAL_CLOSURE);
    await this.#inner.closeWrite().catch(() => {});
  }

  /** Waits until `count` unparsed bytes are buffered. */
  async #need(count: number): Promise<void> {
    if (this.#end - this.#start >= count) return;
    this.#input.copyWithin(0, this.#start, this.#end);
    this.#end -= this.#start;
    this.#start = 0;
    while (this.#end < count) {
      const read = await this.#inner.read(this.#input.subarray(this.#end));
      if (read === null) {
        if (this.#end === 0 && count === 2) {
          throw new WebSocketError("the WebSocket ended without a Close frame");
        }
        throw new WebSocketError("the connection ended inside a WebSocket frame header");
      }
      this.#end += read;
    }
  }

  /** Queues one frame; frames from concurrent calls never interleave. */
  #send(opcode: number, payload: Uint8Array): Promise<void> {
    const frame = encodeFrame(opcode, payload, this.#isClient);
    const sent = this.#writes.then(() => writeAll(this.#inner, frame));
    this.#writes = sent.catch(() => {});
    return sent;
  }
}

/** One frame, FIN set; masked with a fresh random key when `masked`. */
function encodeFrame(opcode: number, payload: Uint8Array, masked: boolean): Uint8Array {
  const lengthBytes = payload.length < 126 ? 0 : payload.length < 65536 ? 2 : 8;
  const headerBytes = 2 + lengthBytes + (masked ? 4 : 0);
  const buffer = new Uint8Array(PAYLOAD_AT + payload.length);
  const frame = buffer.subarray(PAYLOAD_AT - headerBytes);
  frame[0] = 0x80 | opcode;
  frame[1] = (masked ? 0x80 : 0) |
    (lengthBytes === 0 ? payload.length : lengthBytes === 2 ? 126 : 127);
  const view = new DataView(buffer.buffer, PAYLOAD_AT - headerBytes + 2, lengthBytes);
  if (lengthBytes === 2) view.setUint16(0, payload.length);
  if (lengthBytes === 8) view.setBigUint64(0, BigInt(payload.length));
  buffer.set(payload, PAYLOAD_AT);
  if (masked) {
    const key = crypto.getRandomValues(buffer.subarray(PAYLOAD_AT - 4, PAYLOAD_AT));
    xorWithKey(buffer.subarray(PAYLOAD_AT), key, 0);
  }
  return frame;
}

const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** XORs `bytes` in place with the 4-byte `key`, starting at key byte `at`; a word at a time. */
export function xorWithKey(bytes: Uint8Array, key: Uint8Array, at: number): void {
  let i = 0;
  for (; i < bytes.length && (bytes.byteOffset + i) % 4 !== 0; i++) bytes[i] ^= key[(at + i) & 3];
  const words = (bytes.length - i) >>> 2;
  if (words > 0) {
    const k = [0, 1, 2, 3].map((n) => key[(at + i + n) & 3]);
    const word = littleEndian
      ? (k[0] | k[1] << 8 | k[2] << 16 | k[3] << 24)
      : (k[3] | k[2] << 8 | k[1] << 16 | k[0] << 24);
    const view = new Uint32Array(bytes.buffer, bytes.byteOffset + i, words);
    for (let w = 0; w < words; w++) view[w] ^= word;
    i += words * 4;
  }
  for (; i < bytes.length; i++) bytes[i] ^= key[(at + i) & 3];
}
