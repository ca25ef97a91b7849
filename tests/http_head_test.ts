/** Finding the host in an HTTP request head, as the HTTP front does, in-process. */

import { assertEquals } from "./assert.ts";
import { socketPair } from "./helpers.ts";
import { writeAll } from "../lib/net.ts";
import { hostOf, MAX_HEAD_BYTES, readRequestHead } from "../lib/http_head.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

Deno.test("host of a request head: Host header, absolute URI, case, port and trailing dot", () => {
  assertEquals(hostOf("GET / HTTP/1.1\r\nHost: Web.Example.COM:8080"), "web.example.com");
  assertEquals(hostOf("GET / HTTP/1.1\r\nhost: web.example.com."), "web.example.com");
  assertEquals(hostOf("GET / HTTP/1.1\r\nX: 1\r\nHOST:web"), "web");
  assertEquals(
    hostOf("GET http://API.example.com:80/x?y HTTP/1.1\r\nHost: other.example.com"),
    "api.example.com",
    "an absolute request URI wins over the Host header",
  );
  assertEquals(hostOf("GET / HTTP/1.1\r\nHost: [::1]:8080"), "[::1]");
  assertEquals(hostOf("GET / HTTP/1.1\r\nUser-Agent: x"), undefined, "no host");
  assertEquals(hostOf("SSH-2.0-OpenSSH_9.2\r\nHost: web"), undefined, "not HTTP");
});

Deno.test("request head: read one byte per segment, kept whole with what came after it", async () => {
  const [client, relaySide] = await socketPair();
  const request = "POST /upload HTTP/1.1\r\nHost: web.example.com\r\nContent-Length: 4\r\n\r\n";
  const writing = (async () => {
    for (const byte of bytes(request)) {
      await writeAll(client, new Uint8Array([byte]));
      await new Promise((resolve) => setTimeout(resolve, 1)); // one segment per byte
    }
    await writeAll(client, bytes("body"));
  })();
  const head = await readRequestHead(relaySide);
  await writing;
  assertEquals(head.kind, "head");
  if (head.kind !== "head") return;
  assertEquals(head.host, "web.example.com");
  assertEquals(new TextDecoder().decode(head.bytes).startsWith(request), true);
  client.close();
  relaySide.close();
});

Deno.test("request head: too large is 400, too slow is 408, nothing at all is gone", async () => {
  const [client, relaySide] = await socketPair();
  const huge = writeAll(client, bytes(`GET / HTTP/1.1\r\nX: ${"a".repeat(MAX_HEAD_BYTES)}\r\n`));
  const tooLarge = await readRequestHead(relaySide);
  assertEquals(tooLarge.kind === "bad" && tooLarge.status, 400);
  client.close();
  relaySide.close();
  await huge.catch(() => {});

  const [slow, slowRelaySide] = await socketPair();
  await writeAll(slow, bytes("GET / HTTP/1.1\r\nHost: web"));
  const timedOut = await readRequestHead(slowRelaySide, 200);
  assertEquals(timedOut.kind === "bad" && timedOut.status, 408);
  slow.close();
  slowRelaySide.close();

  const [quiet, quietRelaySide] = await socketPair();
  quiet.close();
  assertEquals((await readRequestHead(quietRelaySide)).kind, "gone");
  quietRelaySide.close();
});
