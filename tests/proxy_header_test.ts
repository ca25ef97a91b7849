/** The PROXY protocol header toward services: as bytes, and as a real nginx reads it. */

import { assertEquals } from "./assert.ts";
import {
  connect,
  readAll,
  readExactly,
  socketPair,
  startAgentProcess,
  startRelayProcess,
} from "./helpers.ts";
import { startNginx } from "./nginx.ts";
import { writeAll } from "../lib/net.ts";
import { proxyHeader, readProxyHeader } from "../lib/proxy_header.ts";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

Deno.test("PROXY header: version 1 and 2, IPv4 and IPv6, and unknown addresses", async () => {
  const client = { hostname: "203.0.113.7", port: 51234 };
  const server = { hostname: "198.51.100.1", port: 443 };
  assertEquals(
    text(await proxyHeader(1, client, server)),
    "PROXY TCP4 203.0.113.7 198.51.100.1 51234 443\r\n",
  );
  assertEquals(
    text(await proxyHeader(1, { hostname: "2001:db8::1", port: 1 }, { hostname: "::1", port: 2 })),
    "PROXY TCP6 2001:db8::1 ::1 1 2\r\n",
  );
  assertEquals(
    text(await proxyHeader(1, client, { hostname: "::1", port: 2 })),
    "PROXY UNKNOWN\r\n",
  );
  const v2 = await proxyHeader(2, client, server);
  const signature = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
  assertEquals([...v2.subarray(0, 12)], signature);
  assertEquals([...v2.subarray(12)], [
    0x21,
    0x11,
    0,
    12, // v2 PROXY, TCP over IPv4, 12 bytes of addresses
    203,
    0,
    113,
    7,
    198,
    51,
    100,
    1,
    51234 >> 8,
    51234 & 255,
    443 >> 8,
    443 & 255,
  ]);
  const v6 = await proxyHeader(2, { hostname: "::1", port: 1 }, { hostname: "::1", port: 2 });
  assertEquals([v6[13], v6[14], v6[15], v6.length], [0x21, 0, 36, 52]);
  const unknown = await proxyHeader(2, { hostname: "", port: 0 }, server);
  assertEquals([unknown[13], unknown[14], unknown[15], unknown.length], [0, 0, 0, 16]);
});

Deno.test("PROXY header v1 and v2: nginx behind the tunnel sees the real client's address", async () => {
  await using nginx = await startNginx(
    'listen 127.0.0.1:PORT proxy_protocol; location / { return 200 "$proxy_protocol_addr:$proxy_protocol_port"; }',
  );
  await using relay = await startRelayProcess();
  await using agent = await startAgentProcess(relay, { v1: nginx.port, v2: nginx.port }, [
    "--proxy-protocol",
    "v1=v1",
    "--proxy-protocol",
    "v2=v2",
  ]);
  for (const service of ["v1", "v2"]) {
    const conn = await connect(agent.publicPort[service]);
    try {
      await writeAll(conn, new TextEncoder().encode("GET / HTTP/1.0\r\nHost: web\r\n\r\n"));
      const response = text(await readAll(conn));
      const body = response.slice(response.indexOf("\r\n\r\n") + 4);
      assertEquals(body, `127.0.0.1:${conn.localAddr.port}`, `${service}: ${response}`);
    } finally {
      conn.close();
    }
  }
});

Deno.test("PROXY header read: v1 and v2 back to the client, local ones, nonsense, nothing more", async () => {
  const client = { hostname: "2001:db8::7", port: 40000 };
  const server = { hostname: "2001:db8::1", port: 443 };
  for (const version of [1, 2] as const) {
    const [writer, reader] = await socketPair();
    await writeAll(writer, new Uint8Array([...await proxyHeader(version, client, server), 42]));
    assertEquals(await readProxyHeader(reader), { client }, `v${version}`);
    assertEquals([...await readExactly(reader, 1)], [42], "the client's first byte is left");
    writer.close();
    reader.close();
  }
  const cases: [string, unknown][] = [
    ["PROXY UNKNOWN\r\n", { local: true }],
    ["GET / HTTP/1.1\r\n\r\n", { bad: "no PROXY header" }],
    [`PROXY TCP4 ${"1".repeat(120)}`, { bad: "PROXY v1 header too long" }],
    ["PROXY TCP9 1.2.3.4 5.6.7.8 1 2\r\n", {
      bad: 'PROXY v1 header "PROXY TCP9 1.2.3.4 5.6.7.8 1 2"',
    }],
  ];
  for (const [header, expected] of cases) {
    const [writer, reader] = await socketPair();
    await writeAll(writer, new TextEncoder().encode(header));
    assertEquals(await readProxyHeader(reader), expected, header);
    writer.close();
    reader.close();
  }
});
