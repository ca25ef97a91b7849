/**
 * The HTTP front end to end: real relay and agent processes, real clients (curl), a real web
 * server (nginx) and an in-process one; services reached by Host on one shared port.
 */

import { assert, assertEquals, assertMatch } from "./assert.ts";
import {
  connect,
  freePort,
  type Proc,
  randomBytes,
  readAll,
  sha256,
  startAgentProcess,
  startRelayProcess,
} from "./helpers.ts";
import { statusOf } from "./faults.ts";
import { SAYS_WEB, startNginx } from "./nginx.ts";
import { writeAll } from "../lib/net.ts";

const DOMAIN = "tunnel.test";

/** A relay with the HTTP front, and the port the front listens on. */
async function relayWithHttpFront() {
  const relay = await startRelayProcess(["--http", "127.0.0.1:0", "--domain", DOMAIN]);
  const [, port] = await relay.whileStarting(() =>
    relay.waitFor(/listening for HTTP clients on .*:(\d+) /)
  );
  return Object.assign(relay, { httpPort: Number(port) });
}

/** Runs curl against `host` on the front, as if DNS named the relay; returns its stdout. */
async function curl(httpPort: number, host: string, args: string[]): Promise<string> {
  const output = await new Deno.Command("curl", {
    args: ["-sS", "--resolve", `${host}:${httpPort}:127.0.0.1`, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout);
  assert(
    output.success,
    `curl ${args.join(" ")} failed: ${new TextDecoder().decode(output.stderr)}`,
  );
  return text;
}

const url = (service: string, port: number, path = "/") =>
  `http://${service}.${DOMAIN}:${port}${path}`;

/** An in-process HTTP service: the hash of what is posted, and a WebSocket echo at /ws. */
function startApi() {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    if (request.headers.get("upgrade") === "websocket") {
      const { socket, response } = Deno.upgradeWebSocket(request);
      socket.onmessage = (event) => socket.send(`echo: ${event.data}`);
      return response;
    }
    const body = new Uint8Array(await request.arrayBuffer());
    return new Response(`api ${body.length} ${sha256(body)}\n`);
  });
}

Deno.test("HTTP front: services by Host on one port, keep-alive, a 20 MiB upload, a WebSocket", async () => {
  await using nginx = await startNginx(
    `listen 127.0.0.1:PORT; location / { return 200 "web $connection_requests\\n"; }`,
  );
  await using api = startApi();
  await using relay = await relayWithHttpFront();
  await using agent = await startAgentProcess(relay, {}, [
    "--service",
    `web=http://127.0.0.1:${nginx.port}`,
    "--service",
    `api=http://127.0.0.1:${api.addr.port}`,
  ]);
  const { httpPort } = relay;
  await onHttpFront(agent, ["web", "api"], httpPort);
  assertEquals((await statusOf(relay)).fronts, "ports,http", "the status line names the fronts");
  // One curl, three requests: keep-alive carries them on one connection through the tunnel.
  const web = url("web", httpPort);
  assertEquals(
    await curl(httpPort, `web.${DOMAIN}`, [web, web, web]),
    "web 1\nweb 2\nweb 3\n",
  );
  const upload = randomBytes(20 * 1024 * 1024);
  const file = await Deno.makeTempFile();
  try {
    await Deno.writeFile(file, upload);
    assertEquals(
      await curl(httpPort, `api.${DOMAIN}`, ["--data-binary", `@${file}`, url("api", httpPort)]),
      `api ${upload.length} ${sha256(upload)}\n`,
    );
  } finally {
    await Deno.remove(file);
  }
  assertEquals(await webSocketEcho(httpPort, `api.${DOMAIN}`, "hello"), "echo: hello");
});

Deno.test("HTTP front: unknown host 404, offline and unreachable 502, a head one byte at a time", async () => {
  await using nginx = await startNginx(SAYS_WEB);
  await using relay = await relayWithHttpFront();
  const agent = await startAgentProcess(relay, {}, [
    "--service",
    `web=http://127.0.0.1:${nginx.port}`,
    "--service",
    `down=http://127.0.0.1:${freePort()}`,
  ]);
  const { httpPort } = relay;
  await agent.whileStarting(() => onHttpFront(agent, ["web", "down"], httpPort));
  const status = (service: string) =>
    curl(httpPort, `${service}.${DOMAIN}`, [
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      url(service, httpPort),
    ]);
  try {
    assertEquals(await status("nothing"), "404");
    const body = await curl(httpPort, `nothing.${DOMAIN}`, [url("nothing", httpPort)]);
    assertEquals(body, `no service is published at nothing.${DOMAIN}\n`, "names no other service");
    assertEquals(await status("down"), "502", "the agent cannot reach the service");
    assertEquals(await oneBytePerSegment(httpPort, `web.${DOMAIN}`), "web\n");
  } finally {
    await agent.stop();
  }
  await relay.waitFor(/web, down offline|down, web offline/);
  assertEquals(await status("web"), "502", "the service's agent is gone");
});

/** Waits until the agent says each of `services` is reachable on the HTTP front. */
async function onHttpFront(agent: Proc, services: string[], httpPort: number): Promise<void> {
  for (const service of services) {
    await agent.waitFor(
      new RegExp(`service ${service} is also reachable at ${url(service, httpPort)}$`),
    );
  }
}

/** Sends a GET one byte per write, with Nagle off, and returns the response body. */
async function oneBytePerSegment(port: number, host: string): Promise<string> {
  const conn = await connect(port);
  conn.setNoDelay(true);
  try {
    for (
      const byte of new TextEncoder().encode(
        `GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
      )
    ) {
      await writeAll(conn, new Uint8Array([byte]));
      await new Promise((resolve) => setTimeout(resolve, 2)); // each byte its own segment
    }
    const response = new TextDecoder().decode(await readAll(conn));
    assertMatch(response, /^HTTP\/1\.1 200 /);
    return response.slice(response.indexOf("\r\n\r\n") + 4);
  } finally {
    conn.close();
  }
}

/** Opens a WebSocket to `host` through the front (by hand: the client must name the host), sends `text`, returns the answer. */
async function webSocketEcho(port: number, host: string, text: string): Promise<string> {
  const conn = await connect(port);
  try {
    const key = btoa(String.fromCharCode(...randomBytes(16)));
    await writeAll(
      conn,
      new TextEncoder().encode(
        `GET /ws HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      ),
    );
    const payload = new TextEncoder().encode(text);
    const mask = randomBytes(4);
    const frame = new Uint8Array([
      0x81,
      0x80 | payload.length,
      ...mask,
      ...payload.map((b, i) => b ^ mask[i % 4]),
    ]);
    let received = new Uint8Array(0);
    const buffer = new Uint8Array(4096);
    let sent = false;
    while (true) {
      const n = await conn.read(buffer);
      assert(n !== null, "the WebSocket closed early");
      received = new Uint8Array([...received, ...buffer.subarray(0, n)]);
      const headEnd = new TextDecoder().decode(received).indexOf("\r\n\r\n");
      if (headEnd < 0) continue;
      assertMatch(new TextDecoder().decode(received.subarray(0, headEnd)), /^HTTP\/1\.1 101 /);
      if (!sent) {
        await writeAll(conn, frame);
        sent = true;
      }
      const answer = received.subarray(headEnd + 4);
      if (answer.length >= 2 && answer.length >= 2 + (answer[1] & 0x7f)) {
        assertEquals(answer[0], 0x81, "a text frame comes back");
        return new TextDecoder().decode(answer.subarray(2, 2 + (answer[1] & 0x7f)));
      }
    }
  } finally {
    conn.close();
  }
}
