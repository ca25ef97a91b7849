/** Splicing in-process: half-close both ways, byte counts, large transfers, resets. */

import { assert, assertEquals } from "./assert.ts";
import { randomBytes, readAll, sha256, socketPair } from "./helpers.ts";
import { writeAll } from "../lib/net.ts";
import { LARGE_BUFFER_BYTES, splice } from "../lib/splice.ts";

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
