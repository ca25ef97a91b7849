/**
 * Client-side probes. Each one takes a loopback port and knows nothing of tunnels, so the same
 * probe runs against a backend directly and through the relay's public port.
 */

import { Child, sleep } from "./procs.ts";

/** Longest wait for one connect, echo or answer before the connection counts as failed. */
export const OP_TIMEOUT_MS = 15_000;
/** Connections a burst keeps opening at once (a browser-like client, not a SYN flood). */
export const OPEN_PARALLELISM = 100;

const ONE_BYTE = new Uint8Array([0x2a]);

/** Connects to `port` on 127.0.0.1 with Nagle off, as porthole does on its own sockets. */
export async function connect(port: number): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({
    hostname: "127.0.0.1",
    port,
    signal: AbortSignal.timeout(OP_TIMEOUT_MS),
  });
  conn.setNoDelay(true);
  return conn;
}

/** Resolves as `work` does, unless `ms` pass first: then `conn` is closed and it rejects. */
export async function within<T>(
  conn: Deno.Conn,
  ms: number,
  what: string,
  work: Promise<T>,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      closeQuietly(conn);
      reject(new Error(`${what} took longer than ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let done = 0; done < data.length;) done += await conn.write(data.subarray(done));
}

/** Sends one byte and waits for it to come back. */
export function echoRound(conn: Deno.Conn): Promise<void> {
  return within(
    conn,
    OP_TIMEOUT_MS,
    "an echo",
    (async () => {
      await writeAll(conn, ONE_BYTE);
      const back = new Uint8Array(1);
      if ((await conn.read(back)) !== 1 || back[0] !== ONE_BYTE[0]) {
        throw new Error("the echo did not come back");
      }
    })(),
  );
}

/** Opens a fresh connection, echoes one byte and closes it. */
export async function echoOnce(port: number): Promise<void> {
  const conn = await connect(port);
  try {
    await echoRound(conn);
  } finally {
    closeQuietly(conn);
  }
}

/** Latencies of sequential fresh connections. */
export interface SetupResult {
  /** Milliseconds from connect to close of each successful connection, sorted. */
  latenciesMs: number[];
  /** Connections that failed. */
  failed: number;
  /** The first failure, if any. */
  firstError?: string;
  /** Wall time of the whole run. */
  seconds: number;
}

/** `count` fresh connections one after another, each connect → 1-byte echo → close. */
export async function sequentialConnections(port: number, count: number): Promise<SetupResult> {
  const latenciesMs: number[] = [];
  let failed = 0;
  let firstError: string | undefined;
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const begin = performance.now();
    try {
      await echoOnce(port);
      latenciesMs.push(performance.now() - begin);
    } catch (error) {
      failed++;
      firstError ??= (error as Error).message;
    }
  }
  const seconds = (performance.now() - started) / 1000;
  return { latenciesMs: latenciesMs.sort((a, b) => a - b), failed, firstError, seconds };
}

/** The value below which `fraction` of the sorted `values` lie (nearest rank). */
export function percentile(sorted: number[], fraction: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)];
}

/** What happened to a burst of connections held open together. */
export interface HoldResult {
  /** Connections asked for. */
  count: number;
  /** Connections that failed to open, to echo at open, or to echo after the pause. */
  failed: number;
  /** The first failure, if any. */
  firstError?: string;
  /** Seconds until every connection had opened (or failed) and echoed once. */
  openSeconds: number;
}

/**
 * Opens `count` connections, {@link OPEN_PARALLELISM} at a time, each echoing once at open; holds
 * them all for `pauseMs`, lets each echo once more, and closes them all.
 */
export async function holdConnections(
  port: number,
  count: number,
  pauseMs: number,
): Promise<HoldResult> {
  const open: Deno.TcpConn[] = [];
  let failed = 0;
  let firstError: string | undefined;
  const fail = (error: unknown) => {
    failed++;
    firstError ??= (error as Error).message;
  };
  const started = performance.now();
  let claimed = 0;
  const opener = async () => {
    while (claimed++ < count) {
      let conn: Deno.TcpConn | undefined;
      try {
        conn = await connect(port);
        await echoRound(conn);
        open.push(conn);
      } catch (error) {
        if (conn) closeQuietly(conn);
        fail(error);
      }
    }
  };
  await Promise.all(Array.from({ length: OPEN_PARALLELISM }, opener));
  const openSeconds = (performance.now() - started) / 1000;
  try {
    await sleep(pauseMs);
    await Promise.all(open.map((conn) => echoRound(conn).catch(fail)));
  } finally {
    open.forEach(closeQuietly);
  }
  return { count, failed, firstError, openSeconds };
}

/** How a bulk transfer into the sink, or out of the source, went. */
export interface BulkResult {
  /** Seconds from connect until the transfer was over (the sink's answer, the source's end). */
  seconds: number;
  /** Bytes the sink says it received, or that arrived from the source. */
  counted: number;
}

/** Connects to `port` and runs `work` on the connection within `timeoutMs`, timing it. */
async function timedTransfer(
  port: number,
  timeoutMs: number,
  what: string,
  work: (conn: Deno.Conn) => Promise<number>,
): Promise<BulkResult> {
  const started = performance.now();
  const conn = await connect(port);
  try {
    const counted = await within(conn, timeoutMs, what, work(conn));
    return { seconds: (performance.now() - started) / 1000, counted };
  } finally {
    closeQuietly(conn);
  }
}

/**
 * Sends `bytes` to the sink at `port`, half-closes, and reads the count the sink answers with
 * (which only arrives if the half-close made it through).
 */
export function sinkTransfer(port: number, bytes: number, timeoutMs: number): Promise<BulkResult> {
  const chunk = crypto.getRandomValues(new Uint8Array(64 * 1024));
  return timedTransfer(port, timeoutMs, `sending ${bytes} bytes`, async (conn) => {
    for (let sent = 0; sent < bytes; sent += chunk.length) {
      await writeAll(conn, chunk.subarray(0, Math.min(chunk.length, bytes - sent)));
    }
    await conn.closeWrite();
    let text = "";
    const buffer = new Uint8Array(64);
    for (let n; (n = await conn.read(buffer)) !== null;) {
      text += new TextDecoder().decode(buffer.subarray(0, n));
    }
    return Number(text.trim());
  });
}

/**
 * Asks the source at `port` for `bytes` and counts what arrives until it ends (which only happens
 * if its half-close made it through).
 */
export function sourceTransfer(
  port: number,
  bytes: number,
  timeoutMs: number,
): Promise<BulkResult> {
  const buffer = new Uint8Array(256 * 1024);
  return timedTransfer(port, timeoutMs, `receiving ${bytes} bytes`, async (conn) => {
    await writeAll(conn, new TextEncoder().encode(`${bytes}\n`));
    let count = 0;
    for (let n; (n = await conn.read(buffer)) !== null;) count += n;
    return count;
  });
}

/**
 * Runs `iperf3 -c` against `port` with `streams` parallel streams for `seconds` (after one
 * omitted warm-up second) and returns the receiver's bits per second. The client sends, or with
 * `reverse` the server does (`-R`).
 */
export async function iperf3(
  port: number,
  streams: number,
  seconds: number,
  reverse = false,
): Promise<number> {
  // The server takes one test at a time, and on a busy machine it may still be finishing the last
  // one: that refusal is retried, for a while.
  for (let attempt = 1;; attempt++) {
    try {
      return await iperf3Once(port, streams, seconds, reverse);
    } catch (error) {
      if (!/server is busy/.test((error as Error).message) || attempt >= IPERF_BUSY_RETRIES) {
        throw error;
      }
      await sleep(IPERF_BUSY_PAUSE_MS);
    }
  }
}

/** Times a busy iperf3 server is asked again, and the pause before each. */
const IPERF_BUSY_RETRIES = 10;
const IPERF_BUSY_PAUSE_MS = 500;

async function iperf3Once(
  port: number,
  streams: number,
  seconds: number,
  reverse: boolean,
): Promise<number> {
  const client = new Child("iperf3 -c", "iperf3", [
    ...["-c", "127.0.0.1", "-p", `${port}`, "-P", `${streams}`, "-t", `${seconds}`],
    ...["-O", "1", "-i", "0", "-J", "--connect-timeout", `${OP_TIMEOUT_MS}`],
    ...reverse ? ["-R"] : [],
  ]);
  const timer = setTimeout(() => client.stop(), (seconds + 1) * 1000 + OP_TIMEOUT_MS * 2);
  await client.status;
  clearTimeout(timer);
  let report;
  try {
    report = JSON.parse(client.stdout.join("\n"));
  } catch {
    throw new Error(`iperf3 gave no report: ${client.lines.join(" ").slice(0, 300)}`);
  }
  if (report.error) throw new Error(`iperf3: ${report.error}`);
  return report.end.sum_received.bits_per_second;
}
