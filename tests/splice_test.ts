/** Splicing in-process: half-close both ways, byte counts, large transfers, resets. */

import { assert, assertEquals } from "./assert.ts";
import { eventually, randomBytes, readAll, sha256, socketPair } from "./helpers.ts";
import { type Conn, writeAll } from "../lib/net.ts";
import { BULK_READ_BYTES, LARGE_BUFFER_BYTES, SMALL_BUFFER_BYTES, splice } from "../lib/splice.ts";

/** client ⇄ [a | splice | b] ⇄ server */
async function splicedPair() {
  const [client, a] = await socketPair();
  const [b, server] = await socketPair();
  const spliced = splice(a, b);
  return { client, server, spliced };
}

Deno.test("splice: each side's half-close reaches the other, and both answers arrive", async () => {
  const { client, server, spliced } = await splicedPair();
  const question = randomBytes(3 * LARGE_BUFFER_BYTES + 17);
  const answer = randomBytes(2 * LARGE_BUFFER_BYTES + 5);
  await writeAll(client, question);
  await client.closeWrite();
  const heard = await readAll(server); // ends because the client's shutdown was passed on
  await writeAll(server, answer);
  await server.closeWrite();
  const replied = await readAll(client);
  assertEquals(sha256(heard), sha256(question));
  assertEquals(sha256(replied), sha256(answer));
  assertEquals(await spliced, { aToB: question.length, bToA: answer.length, idle: false });
  client.close();
  server.close();
});

Deno.test("splice: a full close on one side is passed on and ends the splice", async () => {
  const { client, server, spliced } = await splicedPair();
  await writeAll(client, new Uint8Array([1, 2, 3]));
  const got = new Uint8Array(3);
  for (let at = 0; at < 3;) at += (await server.read(got.subarray(at)))!;
  client.close(); // with nothing unread, a close arrives as end-of-stream...
  assertEquals(await server.read(new Uint8Array(1)), null); // ...and is passed on
  server.close();
  const moved = await spliced;
  assertEquals(moved.aToB, 3);
});

Deno.test("splice: an idle timeout closes a quiet connection, and activity keeps one open", async () => {
  const [client, a] = await socketPair();
  const [b, server] = await socketPair();
  const spliced = splice(a, b, { idleTimeoutMs: 300 });
  // A byte every 100 ms for 600 ms: never idle for 300 ms, so it stays open.
  let lastByteAt = 0;
  for (let i = 0; i < 6; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    await writeAll(client, new Uint8Array([i]));
    lastByteAt = performance.now();
    const got = new Uint8Array(1);
    assertEquals(await server.read(got), 1);
    assertEquals(got[0], i);
  }
  // Then silence: both ends are closed 300 ms after the last byte.
  assertEquals(await server.read(new Uint8Array(1)), null);
  assertEquals(await client.read(new Uint8Array(1)), null);
  const quietFor = performance.now() - lastByteAt;
  assertEquals(await spliced, { aToB: 6, bToA: 0, idle: true });
  assert(quietFor >= 290, `closed after only ${quietFor} ms of silence`);
  client.close();
  server.close();
});

const ADDR: Deno.NetAddr = { transport: "tcp", hostname: "127.0.0.1", port: 0 };

/**
 * An in-memory connection that reads the way a TLS connection does: each read returns at most
 * what is left of the current record, however large the buffer. It records every write's size and
 * the size of every buffer it was asked to read into.
 */
class RecordConn implements Conn {
  readonly localAddr = ADDR;
  readonly remoteAddr = ADDR;
  readonly writes: number[] = [];
  readonly readBuffers: number[] = [];
  #records: number[];
  #more = Promise.withResolvers<void>();

  constructor(records: number[]) {
    this.#records = [...records];
  }

  /** Makes a read waiting for more records end the stream. */
  end(): void {
    this.#more.resolve();
  }

  async read(into: Uint8Array): Promise<number | null> {
    this.readBuffers.push(into.length);
    if (this.#records.length === 0) {
      await this.#more.promise;
      return null;
    }
    const count = Math.min(into.length, this.#records[0]);
    if (count === this.#records[0]) this.#records.shift();
    else this.#records[0] -= count;
    return count;
  }

  write(data: Uint8Array): Promise<number> {
    this.writes.push(data.length);
    return Promise.resolve(data.length);
  }

  closeWrite(): Promise<void> {
    return Promise.resolve();
  }

  close(): void {
    this.end();
  }
}

Deno.test("splice: bulk data read a TLS record at a time is passed on a record per write", async () => {
  const recordCount = 40;
  const tail = 3000;
  const tls = new RecordConn([...Array(recordCount).fill(BULK_READ_BYTES), tail]);
  const server = new RecordConn([]);
  const spliced = splice(tls, server);
  // The first read fills the small buffer and so borrows a large one for the rest of the record;
  // from then on each record arrives whole, and is written whole, never split in small pieces.
  await eventually(
    () => tls.readBuffers.length === recordCount + 3,
    "every record is read and the next read waits",
  );
  assertEquals(server.writes, [
    SMALL_BUFFER_BYTES,
    BULK_READ_BYTES - SMALL_BUFFER_BYTES,
    ...Array(recordCount - 1).fill(BULK_READ_BYTES),
    tail,
  ]);
  // The burst is over (the last read was short), so the read now waiting holds a small buffer.
  assertEquals(tls.readBuffers.at(-1), SMALL_BUFFER_BYTES);
  assert(tls.readBuffers.slice(1, -1).every((length) => length === LARGE_BUFFER_BYTES));
  tls.end();
  server.end();
  const moved = await spliced;
  assertEquals(moved.aToB, recordCount * BULK_READ_BYTES + tail);
});

Deno.test("splice: a short message borrows the large buffer for one read only", async () => {
  const message = new RecordConn([SMALL_BUFFER_BYTES + 500]);
  const server = new RecordConn([]);
  const spliced = splice(message, server);
  await eventually(
    () => message.readBuffers.length === 3,
    "the message is read and the next read waits",
  );
  assertEquals(server.writes, [SMALL_BUFFER_BYTES, 500]);
  assertEquals(message.readBuffers, [SMALL_BUFFER_BYTES, LARGE_BUFFER_BYTES, SMALL_BUFFER_BYTES]);
  message.end();
  server.end();
  await spliced;
});
