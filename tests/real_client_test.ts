/**
 * A load balancer in front of the relay: its PROXY header is taken for the real client's address
 * only from the addresses the relay trusts, and that address is what the service then sees.
 */

import { assert, assertEquals, assertMatch } from "./assert.ts";
import { startAgentProcess, startRelayProcess } from "./helpers.ts";
import { startNginx } from "./nginx.ts";
import { proxyHeader } from "../lib/proxy_header.ts";

const BALANCER = "127.0.0.2"; // a loopback address of its own, as the trusted balancer's
const GET = "GET / HTTP/1.0\r\nHost: web\r\n\r\n";

/** Sends `bytes` from `source` with netcat, half-closes, and returns the answer. */
async function send(source: string, port: number, bytes: Uint8Array): Promise<string> {
  const child = new Deno.Command("nc", {
    args: ["-N", "-s", source, "127.0.0.1", String(port)],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(bytes);
  await writer.close();
  return new TextDecoder().decode((await child.output()).stdout);
}

const concat = (...parts: Uint8Array[]) => new Uint8Array(parts.flatMap((part) => [...part]));
const text = (value: string) => new TextEncoder().encode(value);
const bodyOf = (response: string) => response.slice(response.indexOf("\r\n\r\n") + 4);

Deno.test("PROXY headers from a trusted balancer name the client; anyone else's are not read", async () => {
  await using nginx = await startNginx(
    'listen 127.0.0.1:PORT proxy_protocol; location / { return 200 "$proxy_protocol_addr:$proxy_protocol_port"; }',
  );
  await using relay = await startRelayProcess(["--proxy-protocol-from", `${BALANCER}/32`]);
  await using agent = await startAgentProcess(relay, { web: nginx.port }, [
    "--proxy-protocol",
    "web=v1",
  ]);
  const port = agent.publicPort.web;
  const client = { hostname: "203.0.113.9", port: 5555 };
  const relayAddress = { hostname: "127.0.0.1", port };
  for (const version of [1, 2] as const) {
    const header = await proxyHeader(version, client, relayAddress);
    const answer = await send(BALANCER, port, concat(header, text(GET)));
    assertEquals(bodyOf(answer), "203.0.113.9:5555", `v${version} from the balancer: ${answer}`);
  }
  const from = relay.lines.length;
  assertEquals(await send(BALANCER, port, text(GET)), "", "the balancer must send a header");
  await relay.waitFor(/trusted load balancer .* refused: no PROXY header/, { from });
  const stranger = await send(
    "127.0.0.1",
    port,
    concat(await proxyHeader(1, client, relayAddress), text(GET)),
  );
  assert(!stranger.includes("203.0.113.9"), `a stranger's header is not honoured: ${stranger}`);
  assertMatch(stranger, /^HTTP\/1\.1 400 /, "it reaches the service as the client's own bytes");
});
