/**
 * Helpers for the reliability tests: read a process's status line and its memory, and a forwarding
 * shim that can turn into a network black hole.
 */

import { assertEquals } from "./assert.ts";
import { connect, eventually, type Proc, readAll, readExactly, sha256 } from "./helpers.ts";
import { STATUS_SIGNAL } from "../lib/cli.ts";
import { closeQuietly, writeAll } from "../lib/net.ts";

/** Asks a relay or agent for its status ({@link STATUS_SIGNAL}) and returns the fields of the line it logs. */
export async function statusOf(proc: Proc): Promise<Record<string, string>> {
  const from = proc.lines.length;
  Deno.kill(proc.pid, STATUS_SIGNAL);
  const [, fields] = await proc.waitFor(/ status: (.*)$/, { from });
  // key=value, or key="a value with spaces" (JSON)
  return Object.fromEntries(
    [...fields.matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S*)/g)].map((
      [, key, value],
    ) => [key, value.startsWith('"') ? JSON.parse(value) : value]),
  );
}

/** Resident memory of a process in bytes, from /proc. */
export function rssBytes(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

/**
 * Resolves once connections to a loopback port are refused (nothing listens there any more).
 * A listener closes a moment after a process lets go of it, hence the waiting.
 */
export async function refused(port: number, timeoutMs = 2_000): Promise<void> {
  await eventually(
    async () => {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port })).close();
        return false;
      } catch (error) {
        return error instanceof Deno.errors.ConnectionRefused;
      }
    },
    `connections to port ${port} are refused`,
    timeoutMs,
  );
}

/**
 * The established TCP connections of a process, from /proc, and whether each has a keepalive
 * timer running (the kernel's "tr" field 2), which is what makes it probe a silent peer.
 */
export function establishedConnections(pid: number): { remotePort: number; keepalive: boolean }[] {
  const inodes = new Set<string>();
  for (const entry of Deno.readDirSync(`/proc/${pid}/fd`)) {
    try {
      const target = Deno.readLinkSync(`/proc/${pid}/fd/${entry.name}`);
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode) inodes.add(inode);
    } catch {
      // closed while listing
    }
  }
  const result = [];
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of Deno.readTextFileSync(table).split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      const ESTABLISHED = "01";
      if (fields.length < 10 || fields[3] !== ESTABLISHED || !inodes.has(fields[9])) continue;
      result.push({
        remotePort: parseInt(fields[2].split(":")[1], 16),
        keepalive: fields[5].startsWith("02:"),
      });
    }
  }
  return result;
}

/** Transfers under way: clients that have each read the first `headBytes` and paused. */
export function startTransfers(
  port: number,
  count: number,
  headBytes: number,
): Promise<{ conn: Deno.TcpConn; head: Uint8Array }[]> {
  return Promise.all(Array.from({ length: count }, async () => {
    const conn = await connect(port);
    return { conn, head: await readExactly(conn, headBytes) };
  }));
}

/** Reads each transfer to its end, closes it, and checks that all of `blob` arrived intact. */
export async function finishTransfers(
  transfers: { conn: Deno.TcpConn; head: Uint8Array }[],
  blob: Uint8Array,
): Promise<void> {
  for (const { conn, head } of transfers) {
    const rest = await readAll(conn);
    conn.close();
    assertEquals(head.length + rest.length, blob.length, "the whole transfer arrived");
    const whole = new Uint8Array(blob.length);
    whole.set(head);
    whole.set(rest, head.length);
    assertEquals(sha256(whole), sha256(blob), "the transfer arrived intact");
  }
}

/**
 * A TCP forwarder on loopback to `targetPort`, standing in for the network between agent and
 * relay. {@link blackhole} makes it drop every byte of the connections it carries without
 * closing them (a cable pulled, a VM suspended) and close new ones at once; {@link restore}
 * forwards new connections again. {@link hold} keeps new connections waiting. `onBytes`, if
 * given, sees every chunk it forwards, as someone on the network path could.
 */
export class Shim implements AsyncDisposable {
  readonly port: number;
  #listener: Deno.TcpListener;
  #targetPort: number;
  #onBytes?: (chunk: Uint8Array) => void;
  #dark = false;
  #held?: PromiseWithResolvers<void>;
  #closed = false;
  #links = new Set<{ conns: Deno.Conn[]; dark: boolean }>();
  #accepting: Promise<void>;

  constructor(targetPort: number, onBytes?: (chunk: Uint8Array) => void) {
    this.#targetPort = targetPort;
    this.#onBytes = onBytes;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = this.#listener.addr.port;
    this.#accepting = this.#accept();
  }

  /** Existing connections go silent (bytes dropped, nothing closed); new ones are closed. */
  blackhole(): void {
    this.#dark = true;
    for (const link of this.#links) link.dark = true;
  }

  /** New connections are forwarded again; the silenced ones stay silent. */
  restore(): void {
    this.#dark = false;
  }

  /** New connections wait, accepted but not forwarded yet (a slow link), until {@link release}. */
  hold(): void {
    this.#held ??= Promise.withResolvers();
  }

  /** The connections held are forwarded, and new ones again at once. */
  release(): void {
    this.#held?.resolve();
    this.#held = undefined;
  }

  async #accept(): Promise<void> {
    for await (const inbound of this.#listener) {
      if (this.#dark) {
        inbound.close();
        continue;
      }
      this.#link(inbound).catch(() => closeQuietly(inbound));
    }
  }

  async #link(inbound: Deno.Conn): Promise<void> {
    await this.#held?.promise;
    if (this.#closed) return closeQuietly(inbound); // closed while it was held
    const outbound = await Deno.connect({ hostname: "127.0.0.1", port: this.#targetPort });
    const link = { conns: [inbound, outbound], dark: false };
    this.#links.add(link);
    const forward = async (from: Deno.Conn, to: Deno.Conn) => {
      const buffer = new Uint8Array(64 * 1024);
      for (let n; (n = await from.read(buffer)) !== null;) {
        if (link.dark) continue;
        this.#onBytes?.(buffer.slice(0, n));
        await writeAll(to, buffer.subarray(0, n));
      }
      if (!link.dark) await to.closeWrite();
    };
    const cut = () => {
      if (!link.dark) link.conns.forEach(closeQuietly); // a reset passes on, like a real network
    };
    await Promise.all([
      forward(inbound, outbound).catch(cut),
      forward(outbound, inbound).catch(cut),
    ]);
    if (!link.dark) {
      link.conns.forEach(closeQuietly);
      this.#links.delete(link);
    }
  }

  /** Stops listening and closes every connection, silenced or not. */
  async close(): Promise<void> {
    this.#closed = true;
    this.release();
    closeQuietly(this.#listener);
    await this.#accepting.catch(() => {});
    for (const link of this.#links) link.conns.forEach(closeQuietly);
    this.#links.clear();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
