/** The relay's TLS listener in-process: handshake on first use, backpressure, end-of-stream, close. */

import { assert, assertEquals, assertRejects } from "./assert.ts";
import { connect, randomBytes, readAll, sha256, tempStateDir, WAIT_MS } from "./helpers.ts";
import { type Conn, deadline, writeAll } from "../lib/net.ts";
import { loadOrCreateCertificate } from "../lib/transport/certificate.ts";
import { listenTls, READ_BUFFER_BYTES } from "../lib/transport/node_tls.ts";

/** A client connected to a fresh TLS listener (speaking TLS unless `plain`), and its server side. */
async function tlsPair(plain = false): Promise<{ client: Conn; server: Conn }> {
  const certified = await loadOrCreateCertificate(tempStateDir());
  const listener = await listenTls({ hostname: "127.0.0.1", port: 0 }, certified);
  const port = (listener.addr as Deno.NetAddr).port;
  const [client, server] = await Promise.all([
    connect(port).then((tcp): Conn | Promise<Conn> =>
      plain ? tcp : Deno.startTls(tcp, {
        caCerts: [certified.cert],
        unsafelyDisableHostnameVerification: true,
      })
    ),
    listener.accept(),
  ]);
  listener.close();
  return { client, server };
}

Deno.test("TLS listener: a transfer far beyond its read buffer, read late, arrives whole and ends", async () => {
  const { client, server } = await tlsPair();
  const sent = randomBytes(256 * READ_BUFFER_BYTES + 3);
  // The client writes everything and half-closes, then waits for the answer; its bytes pile up
  // before the server reads, so the server's connection must stop reading from its socket, and
  // later still see the end of the stream.
  const answer = writeAll(client, sent)
    .then(() => client.closeWrite())
    .then(() => readAll(client));
  const received = await deadline(readAll(server), WAIT_MS, server, "the transfer");
  assertEquals(received.length, sent.length);
  assertEquals(sha256(received), sha256(sent));
  // The other direction still works after the client's half-close.
  await writeAll(server, new TextEncoder().encode("got it"));
  await server.closeWrite();
  assertEquals(new TextDecoder().decode(await answer), "got it");
  client.close();
  server.close();
});

Deno.test("TLS listener: close() fails a pending read and frees the socket; the peer sees the end", async () => {
  const { client, server } = await tlsPair();
  const pending = server.read(new Uint8Array(16));
  await writeAll(client, new Uint8Array([1])); // the handshake completes
  assertEquals(await pending, 1);
  const next = server.read(new Uint8Array(16));
  server.close();
  await assertRejects(next, /closed/);
  const seen = await client.read(new Uint8Array(16)).catch(() => null);
  assertEquals(seen, null);
  client.close();
});

Deno.test("TLS listener: a client that is not speaking TLS fails the first read, with the reason", async () => {
  const { client: plain, server } = await tlsPair(true);
  await writeAll(plain, new TextEncoder().encode('\x00\x00\x00\x10{"type":"hello"}'));
  const error = await server.read(new Uint8Array(16)).then(() => undefined, (e: Error) => e);
  assert(error !== undefined, "the read should fail");
  assert(/InvalidContentType|corrupt/.test(error.message), error.message);
  server.close();
  plain.close();
});
