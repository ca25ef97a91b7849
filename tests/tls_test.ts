/** TLS between agent and relay: on by default, pinned or CA-verified, never silently plain. */

import { assert, assertEquals, assertMatch } from "./assert.ts";
import {
  connect,
  echo,
  eventually,
  Proc,
  readExactly,
  request,
  startAgentProcess,
  startRelayProcess,
  startServer,
  tempStateDir,
} from "./helpers.ts";
import { closeQuietly, writeAll } from "../lib/net.ts";
import { splice } from "../lib/splice.ts";
import { fingerprintOf } from "../lib/transport/certificate.ts";
import { denoRunArgs } from "../lib/launch.ts";
import { Shim } from "./faults.ts";
import { makeCa } from "./certs.ts";

/** An agent expected to stop at once; returns its exit code and output. */
async function agentOutcome(relayPort: number, args: string[]) {
  const agent = new Proc("agent", [
    "--relay",
    `127.0.0.1:${relayPort}`,
    "--service",
    "web=127.0.0.1:9",
    ...args,
  ]);
  return { code: (await agent.status).code, output: agent.output };
}

Deno.test("the relay makes its certificate once, keeps the key private, and reuses it", async () => {
  const stateDir = tempStateDir();
  let first: string;
  {
    await using relay = await startRelayProcess(["--state-dir", stateDir]);
    first = relay.fingerprint;
    assertMatch(first, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    await relay.waitFor(/created a self-signed certificate/);
  }
  assertEquals((await Deno.stat(`${stateDir}/relay-key.pem`)).mode! & 0o777, 0o600);
  await using again = await startRelayProcess(["--state-dir", stateDir]);
  assertEquals(again.fingerprint, first);
  await again.waitFor(/using the certificate/);
});

Deno.test("an agent with the wrong fingerprint, or no way to trust a self-signed relay, stops", async () => {
  await using relay = await startRelayProcess();
  const wrong = await agentOutcome(relay.port, ["--fingerprint", "AB".repeat(32)]);
  assertEquals(wrong.code, 3, wrong.output);
  assertMatch(wrong.output, /presented a certificate with fingerprint \S+, not the pinned/);
  const untrusting = await agentOutcome(relay.port, []);
  assertEquals(untrusting.code, 3, untrusting.output);
  assertMatch(untrusting.output, /does not trust .*pass --fingerprint/);
});

Deno.test("a relay with a CA-signed certificate is trusted with --ca, and refused with another CA", async () => {
  const dir = await makeCa();
  await using server = startServer(echo);
  await using relay = await startRelayProcess([
    "--cert",
    `${dir}/relay.pem`,
    "--key",
    `${dir}/relay.key`,
  ]);
  await using agent = await startAgentProcess(
    { port: relay.port, trust: ["--ca", `${dir}/ca.pem`] },
    { echo: server.port },
  );
  const reply = await request(agent.publicPort.echo, new TextEncoder().encode("via CA"));
  assertEquals(new TextDecoder().decode(reply), "via CA");
  const other = await agentOutcome(relay.port, ["--ca", `${dir}/other.pem`]);
  assertEquals(other.code, 3, other.output);
  assertMatch(other.output, /does not trust/);
});

Deno.test("plain TCP on one side and TLS on the other fails with a message that says so", async () => {
  await using tlsRelay = await startRelayProcess();
  const plainAgent = await agentOutcome(tlsRelay.port, ["--insecure"]);
  assertEquals(plainAgent.code, 3, plainAgent.output);
  assertMatch(plainAgent.output, /received TLS where porthole frames were expected/);
  await tlsRelay.waitFor(/not TLS: is the agent running with --insecure\?/);

  await using plainRelay = await startRelayProcess(["--insecure"]);
  await plainRelay.waitFor(/TLS is off \(--insecure\)/);
  const tlsAgent = await agentOutcome(plainRelay.port, ["--fingerprint", "AB".repeat(32)]);
  assertEquals(tlsAgent.code, 3, tlsAgent.output);
  await plainRelay.waitFor(/received TLS where porthole frames were expected/);
  const systemAgent = await agentOutcome(plainRelay.port, []);
  assertEquals(systemAgent.code, 3, systemAgent.output);
  assertMatch(systemAgent.output, /did not answer with TLS.*--insecure/);
});

/** Whether `needle` occurs in the bytes of `chunks` taken together. */
function containsBytes(chunks: Uint8Array[], needle: Uint8Array): boolean {
  const hex = (bytes: Uint8Array) =>
    Array.from(bytes, (x) => x.toString(16).padStart(2, "0")).join("");
  return chunks.map(hex).join("").includes(hex(needle));
}

for (const mode of ["tls", "insecure"] as const) {
  Deno.test(`on the wire between agent and relay, a known payload is ${mode === "tls" ? "not readable (TLS)" : "readable with --insecure"}`, async () => {
    await using server = startServer(echo);
    await using relay = await startRelayProcess(mode === "tls" ? [] : ["--insecure"]);
    const seen: Uint8Array[] = [];
    await using shim = new Shim(relay.port, (chunk) => seen.push(chunk));
    await using agent = await startAgentProcess(relay, { echo: server.port }, [
      "--relay",
      `127.0.0.1:${shim.port}`,
    ]);
    const payload = new TextEncoder().encode("attack at dawn, the password is swordfish");
    assertEquals(await request(agent.publicPort.echo, payload), payload);
    assertEquals(containsBytes(seen, payload), mode === "insecure");
    assertEquals(
      containsBytes(seen, new TextEncoder().encode('"type":"register"')),
      mode === "insecure",
    );
  });
}

Deno.test("over TLS, a new connection's first echo comes back in milliseconds, not after a delayed ACK", async () => {
  await using server = startServer(echo);
  await using relay = await startRelayProcess();
  await using agent = await startAgentProcess(relay, { echo: server.port });
  const byte = new Uint8Array([42]);
  const times: number[] = [];
  for (let i = 0; i < 21; i++) {
    const start = performance.now();
    const conn = await connect(agent.publicPort.echo);
    await writeAll(conn, byte);
    await readExactly(conn, 1);
    times.push(performance.now() - start);
    conn.close();
  }
  times.sort((a, b) => a - b);
  // With Nagle on the relay's TLS sockets, each took ~44 ms: the relay's first small write after
  // the TLS 1.3 session tickets waited for the agent's delayed ACK (40 ms on Linux).
  const median = times[10];
  assert(median < 20, `median connect + first echo took ${median.toFixed(1)} ms`);
});

Deno.test("a relay started without the V8 flags of lib/launch.ts says what that costs", async () => {
  const GC_WARNING = /started without V8's --expose-gc: .* `deno task relay`/;
  await using bare = new Proc(
    "relay",
    ["--listen", "127.0.0.1:0", "--state-dir", tempStateDir()],
    {},
    denoRunArgs("relay").filter((arg) => !arg.startsWith("--v8-flags")),
  );
  await using usual = await startRelayProcess();
  await bare.waitFor(GC_WARNING);
  assert(!GC_WARNING.test(usual.output), usual.output);
});

/**
 * An interceptor in front of the relay at `relayPort`: it lets its first connection (a pinned
 * agent's fetch of the certificate) through untouched, and ends TLS on every later one with
 * `certified` (a certificate a CA the agent's default roots hold signed, for another name),
 * carrying what it decrypts to the relay over TLS of its own, trusting `relayCa`. `plaintext`
 * counts the bytes it could read.
 */
function interceptor(relayPort: number, certified: { cert: string; key: string }, relayCa: string) {
  const front = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const terminator = Deno.listenTls({ hostname: "127.0.0.1", port: 0, ...certified });
  const decrypted = { aToB: { bytes: 0 }, bToA: { bytes: 0 } }; // summed over connections
  let accepted = 0;
  const carry = async (conn: Deno.Conn, up: Promise<Deno.Conn>, counters?: typeof decrypted) => {
    try {
      await splice(conn, await up, { counters });
    } catch {
      closeQuietly(conn); // the relay did not answer
    }
  };
  (async () => {
    for await (const conn of front) {
      const port = accepted++ === 0 ? relayPort : terminator.addr.port;
      carry(conn, Deno.connect({ hostname: "127.0.0.1", port }));
    }
  })();
  (async () => {
    for await (const conn of terminator) {
      const up = Deno.connectTls({ hostname: "127.0.0.1", port: relayPort, caCerts: [relayCa] });
      carry(conn, up, decrypted);
    }
  })();
  return {
    port: front.addr.port,
    get accepted() {
      return accepted;
    },
    get plaintext() {
      return decrypted.aToB.bytes;
    },
    [Symbol.dispose]: () => [front, terminator].forEach(closeQuietly),
  };
}

Deno.test("a pinned agent refuses an interceptor whose certificate a CA of the default roots signed", async () => {
  const [real, impostor] = [await makeCa(), await makeCa("DNS:impostor.example")];
  const relayCert = await Deno.readTextFile(`${real}/relay.pem`);
  await using relay = await startRelayProcess(
    ["--cert", `${real}/relay.pem`, "--key", `${real}/relay.key`],
  );
  using interception = interceptor(relay.port, {
    cert: await Deno.readTextFile(`${impostor}/relay.pem`),
    key: await Deno.readTextFile(`${impostor}/relay.key`),
  }, await Deno.readTextFile(`${real}/ca.pem`));
  const pin = fingerprintOf(relayCert);
  // DENO_CERT adds the impostor's CA to the agent's default roots, as if a public CA had signed
  await using agent = new Proc("agent", [
    ...["--relay", `127.0.0.1:${interception.port}`, "--fingerprint", pin],
    ...["--service", "web=127.0.0.1:9"],
  ], { DENO_CERT: `${impostor}/ca.pem` });
  let ended = false;
  agent.status.then(() => ended = true);
  await eventually(() => ended || interception.plaintext > 0, "the agent stops or talks");
  assertEquals(interception.plaintext, 0, "the interceptor read nothing the agent sent");
  assertEquals((await agent.status).code, 3, agent.output);
  assertMatch(agent.output, new RegExp(`fingerprint \\S+, not the pinned ${pin}`));
  assert(interception.accepted >= 2, "the agent's control channel went through the interceptor");
});
