/**
 * 7: names on shared ports. The same echo service reached through the HTTP front (routed by the
 * Host of a request head) and through its own public port, by the same client in the same run:
 * new connections one after another, and keep-alive rounds on many connections at once. Each
 * round is a request head sent and its echo read back, so no HTTP server weighs on either path;
 * the ratio (HTTP front ÷ port front) is what routing by name costs.
 */

import { type Bench, TARGETS } from "./phases.ts";
import { connect, OP_TIMEOUT_MS, within } from "./probes.ts";
import type { Measure } from "./report.ts";
import { freePorts, retryUntil, startTunnel, type Tunnel } from "./tunnel.ts";

/** Fresh connections measured on each path, after as many unmeasured ones. */
export const NAMED_CONNECTIONS = 1_000;
/** Connections the keep-alive probe keeps busy at once. */
export const KEEPALIVE_CONNECTIONS = 32;
/** Request rounds on each of them. */
export const KEEPALIVE_ROUNDS = 300;
/** The domain the HTTP front routes. */
const DOMAIN = "bench.test";

const HEAD = new TextEncoder().encode(
  `GET /bench HTTP/1.1\r\nHost: web.${DOMAIN}\r\nUser-Agent: porthole-bench\r\n\r\n`,
);

/** Writes the request head and reads its echo; anything else (a 404 from the front) fails. */
function round(conn: Deno.TcpConn, back: Uint8Array): Promise<void> {
  return within(
    conn,
    OP_TIMEOUT_MS,
    "a request's echo",
    (async () => {
      for (let done = 0; done < HEAD.length;) done += await conn.write(HEAD.subarray(done));
      for (let got = 0; got < HEAD.length;) {
        const count = await conn.read(back.subarray(got));
        if (count === null) throw new Error("the echo ended early");
        got += count;
      }
      if (!back.every((byte, i) => byte === HEAD[i])) {
        throw new Error(`not the echo: ${JSON.stringify(new TextDecoder().decode(back))}`);
      }
    })(),
  );
}

/** Connections per second for `count` fresh connections, each one round. */
async function freshConnections(port: number, count: number): Promise<number> {
  const back = new Uint8Array(HEAD.length);
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const conn = await connect(port);
    try {
      await round(conn, back);
    } finally {
      conn.close();
    }
  }
  return count / ((performance.now() - started) / 1000);
}

/** Rounds per second on {@link KEEPALIVE_CONNECTIONS} connections at once. */
async function keepAlive(port: number): Promise<number> {
  const started = performance.now();
  await Promise.all(Array.from({ length: KEEPALIVE_CONNECTIONS }, async () => {
    const conn = await connect(port);
    const back = new Uint8Array(HEAD.length);
    try {
      for (let i = 0; i < KEEPALIVE_ROUNDS; i++) await round(conn, back);
    } finally {
      conn.close();
    }
  }));
  return (KEEPALIVE_CONNECTIONS * KEEPALIVE_ROUNDS) / ((performance.now() - started) / 1000);
}

/** 7: the HTTP front against the port front, through one tunnel. */
export async function names(bench: Bench): Promise<Measure[]> {
  const [httpPort] = freePorts(1);
  const echo = bench.backends.echo;
  const tunnel: Tunnel = await startTunnel({ echo }, bench.secret, false, {
    relay: ["--http", `127.0.0.1:${httpPort}`, "--domain", DOMAIN],
    agent: ["--service", `web=http://127.0.0.1:${echo}`],
  });
  try {
    await retryUntil("the HTTP front", () => freshConnections(httpPort, 1), [tunnel.relay]);
    const portFront = tunnel.ports.echo;
    await freshConnections(portFront, NAMED_CONNECTIONS); // warm-ups, unmeasured
    await freshConnections(httpPort, NAMED_CONNECTIONS);
    const fresh = { port: await freshConnections(portFront, NAMED_CONNECTIONS), http: 0 };
    fresh.http = await freshConnections(httpPort, NAMED_CONNECTIONS);
    const kept = { port: await keepAlive(portFront), http: 0 };
    kept.http = await keepAlive(httpPort);
    bench.details.names = { fresh, kept };
    return [
      {
        name: "names: new connections, HTTP front ÷ port front",
        unit: "conn/s",
        better: "higher",
        direct: fresh.port,
        tunnel: fresh.http,
        target: TARGETS.namedConnections,
      },
      {
        name: "names: keep-alive rounds, HTTP front ÷ port front",
        unit: "rounds/s",
        better: "higher",
        direct: kept.port,
        tunnel: kept.http,
        target: TARGETS.namedKeepAlive,
      },
    ];
  } finally {
    await tunnel.stop();
  }
}
