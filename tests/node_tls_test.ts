/** node:tls connections in-process: handshake on first use, trust, backpressure, end-of-stream, close. */

import { assert, assertEquals, assertRejects } from "./assert.ts";
import { connect, randomBytes, readAll, sha256, tempStateDir, WAIT_MS } from "./helpers.ts";
import { type Conn, deadline, writeAll } from "../lib/net.ts";
import { loadOrCreateCertificate } from "../lib/tls.ts";
import { connectTls, listenTls, READ_BUFFER_BYTES } from "../lib/node_tls.ts";
import tls from "node:tls";

async function tlsPair() {
  const certified = await loadOrCreateCertificate(tempStateDir());
  const listener = await listenTls({ hostname: "127.0.0.1", port: 0 }, certified);
  const port = (listener.addr as Deno.NetAddr).port;
  const [client, server] = await Promise.all([
    connect(port).then((tcp) =>
      Deno.startTls(tcp, { caCerts: [certified.cert], unsafelyDisableHostnameVerification: true })
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
  const certified = await loadOrCreateCertificate(tempStateDir());
  const listener = await listenTls({ hostname: "127.0.0.1", port: 0 }, certified);
  const port = (listener.addr as Deno.NetAddr).port;
  const [plain, server] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port }),
    listener.accept() as Promise<Conn>,
  ]);
  listener.close();
  await writeAll(plain, new TextEncoder().encode('\x00\x00\x00\x10{"type":"hello"}'));
  const error = await server.read(new Uint8Array(16)).then(() => undefined, (e: Error) => e);
  assert(error !== undefined, "the read should fail");
  assert(/InvalidContentType|corrupt/.test(error.message), error.message);
  server.close();
  plain.close();
});

Deno.test("TLS client: trusts only its context's root, and a transfer it reads late still ends", async () => {
  const [certified, stranger] = await Promise.all(
    [tempStateDir(), tempStateDir()].map(loadOrCreateCertificate),
  );
  const listener = await listenTls({ hostname: "127.0.0.1", port: 0 }, certified);
  const relay = { hostname: "127.0.0.1", port: (listener.addr as Deno.NetAddr).port };
  const trusting = (ca: string) => ({
    secureContext: tls.createSecureContext({ ca }),
    checkName: false,
  });

  await assertRejects(connectTls(relay, trusting(stranger.cert), WAIT_MS), /certificate|Unknown/i);
  (await listener.accept()).close();

  const [client, server] = await Promise.all([
    connectTls(relay, trusting(certified.cert), WAIT_MS),
    listener.accept(),
  ]);
  listener.close();
  const sent = randomBytes(256 * READ_BUFFER_BYTES + 5);
  // The server sends everything and half-closes before the client reads a byte.
  const answer = writeAll(server, sent).then(() => server.closeWrite()).then(() => readAll(server));
  const received = await deadline(readAll(client), WAIT_MS, client, "the transfer");
  assertEquals(sha256(received), sha256(sent));
  await writeAll(client, new TextEncoder().encode("thanks"));
  await client.closeWrite();
  assertEquals(new TextDecoder().decode(await answer), "thanks");
  client.close();
  server.close();
});
