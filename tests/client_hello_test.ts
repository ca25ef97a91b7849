/** Reading the server name from a real ClientHello, whole, split over records and over segments. */

import { assertEquals } from "./assert.ts";
import { socketPair } from "./helpers.ts";
import { writeAll } from "../lib/net.ts";
import { readClientHello } from "../lib/front/client_hello.ts";

/** The first flight of a real TLS client (Deno's) asking for `serverName`. */
async function realClientHello(serverName: string): Promise<Uint8Array> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const tcp = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const client = await Deno.startTls(tcp, { hostname: serverName });
  client.handshake().catch(() => {}); // sends the ClientHello; never answered
  const server = await accepted;
  const buffer = new Uint8Array(16 * 1024);
  let length = 0;
  while (length < 5 || length < 5 + ((buffer[3] << 8) | buffer[4])) {
    const count = await server.read(buffer.subarray(length));
    if (count === null) throw new Error("the TLS client closed before its ClientHello");
    length += count;
  }
  client.close();
  server.close();
  listener.close();
  return buffer.slice(0, 5 + ((buffer[3] << 8) | buffer[4]));
}

/** The same handshake bytes as two TLS records instead of one. */
function inTwoRecords(record: Uint8Array): Uint8Array {
  const body = record.subarray(5);
  const half = Math.floor(body.length / 2);
  const header = (length: number) => [22, record[1], record[2], length >> 8, length & 255];
  return new Uint8Array([
    ...header(half),
    ...body.subarray(0, half),
    ...header(body.length - half),
    ...body.subarray(half),
  ]);
}

async function nameOf(bytes: Uint8Array, segment = bytes.length) {
  const [writer, reader] = await socketPair();
  writer.setNoDelay(true);
  const writing = (async () => {
    for (let at = 0; at < bytes.length; at += segment) {
      await writeAll(writer, bytes.subarray(at, at + segment));
    }
  })();
  const hello = await readClientHello(reader, 5_000);
  await writing;
  writer.close();
  reader.close();
  return hello.kind === "hello" ? [hello.serverName, hello.bytes.length] : [hello.kind];
}

Deno.test("ClientHello: the server name, in one record, two records, and 7-byte segments", async () => {
  const hello = await realClientHello("web.tunnel.test");
  assertEquals(await nameOf(hello), ["web.tunnel.test", hello.length]);
  const split = inTwoRecords(hello);
  assertEquals(await nameOf(split), ["web.tunnel.test", split.length], "all records are kept");
  assertEquals(await nameOf(split, 7), ["web.tunnel.test", split.length]);
  assertEquals(await nameOf(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n")), ["bad"]);
});
