/**
 * Test helpers: start relay and agent processes on loopback with ports chosen at run time, wait
 * for what they announce (never a fixed sleep), and small in-process servers and clients.
 */

import { NO_PROXY_VARIABLES, PROXY_VARIABLES } from "../lib/agent/relay_paths.ts";
import { denoRunArgs } from "../lib/launch.ts";
import { createHash } from "node:crypto";
import { assert, assertEquals } from "./assert.ts";
import { randomToken, secretKey } from "../lib/auth.ts";
import { ControlChannel } from "../lib/channel.ts";
import { challengeAgent, greetRelay } from "../lib/handshake.ts";
import { closeQuietly, type Conn, writeAll } from "../lib/net.ts";
import { formatHostPort } from "../lib/address.ts";
import {
  type AgentMessage,
  type AgentMessageOf,
  type RelayMessage,
  type RelayMessageOf,
} from "../lib/protocol.ts";
import { decodeAgentMessage, decodeRelayMessage } from "../lib/message_codec.ts";
import { TcpDialer } from "../lib/transport/tcp.ts";
import type { RelayDialer } from "../lib/transport/transport.ts";
import { TlsDialer } from "../lib/transport/tls.ts";

/** The secret every test process shares. */
export const SECRET = "test-secret-0123456789abcdef";
/** How long a test waits for a process to announce something before failing. */
export const WAIT_MS = 15_000;

/** A relay or agent process whose stderr lines are collected as they arrive. */
export class Proc {
  readonly lines: string[] = [];
  readonly pid: number;
  readonly status: Promise<Deno.CommandStatus>;
  #child: Deno.ChildProcess;
  #waiters = new Set<() => void>();
  #drained: Promise<void>;

  /**
   * `runArgs`: the `deno` arguments before the script's own, by default as lib/launch.ts has them;
   * `wrap`: a command that runs deno (such as `ip netns exec NS`). No proxy variable of the test's
   * environment reaches the process unless `env` sets it.
   */
  constructor(
    script: "relay" | "agent",
    args: string[],
    env: Record<string, string> = {},
    runArgs = denoRunArgs(script),
    wrap: string[] = [],
  ) {
    const command = [...wrap, Deno.execPath(), ...runArgs, ...args];
    const noProxy = Object.fromEntries(
      [...PROXY_VARIABLES, ...NO_PROXY_VARIABLES].map((name) => [name, ""]),
    );
    this.#child = new Deno.Command(command[0], {
      args: command.slice(1),
      env: { PORTHOLE_SECRET: SECRET, NO_COLOR: "1", ...noProxy, ...env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.pid = this.#child.pid;
    this.#drained = Promise.all([
      this.#collect(this.#child.stdout),
      this.#collect(this.#child.stderr),
    ]).then(() => {});
    this.status = this.#drained.then(() => this.#child.status);
  }

  async #collect(stream: ReadableStream<Uint8Array>): Promise<void> {
    let partial = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (partial + text).split("\n");
      partial = parts.pop()!;
      this.lines.push(...parts);
      for (const wake of this.#waiters) wake();
    }
    if (partial) this.lines.push(partial);
    for (const wake of this.#waiters) wake();
  }

  /** All output so far, for assertion messages. */
  get output(): string {
    return this.lines.join("\n");
  }

  /**
   * Resolves with the first line (already seen or yet to come) matching `pattern`; with `from`,
   * the first at that index or later (`proc.lines.length` before an action: a line it causes).
   */
  waitFor(
    pattern: RegExp,
    { from = 0, timeoutMs = WAIT_MS }: { from?: number; timeoutMs?: number } = {},
  ): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      let seen = from;
      const check = () => {
        for (; seen < this.lines.length; seen++) {
          const match = this.lines[seen].match(pattern);
          if (match) return finish(() => resolve(match));
        }
      };
      const timer = setTimeout(
        () =>
          finish(() =>
            reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms:\n${this.output}`))
          ),
        timeoutMs,
      );
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        settle();
      };
      this.#waiters.add(check);
      this.#drained.then(() => {
        check();
        if (this.#waiters.has(check)) {
          finish(() => reject(new Error(`process ended without ${pattern}:\n${this.output}`)));
        }
      });
      check();
    });
  }

  /**
   * Resolves as `work` (waiting for what the process announces) does; if it fails, stops the
   * process first, so that a test that never got the process cannot leave it running.
   */
  async whileStarting<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  /** Stops the process (SIGTERM, then SIGKILL if it lingers) and waits for it. */
  async stop(): Promise<Deno.CommandStatus> {
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // already exited
    }
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // already exited
      }
    }, 5_000);
    const status = await this.status;
    clearTimeout(timer);
    return status;
  }

  /** Open sockets of the process, from /proc. */
  socketCount(): number {
    let count = 0;
    for (const entry of Deno.readDirSync(`/proc/${this.pid}/fd`)) {
      try {
        if (Deno.readLinkSync(`/proc/${this.pid}/fd/${entry.name}`).startsWith("socket:")) count++;
      } catch {
        // closed while listing
      }
    }
    return count;
  }

  async [Symbol.asyncDispose]() {
    await this.stop();
  }
}

/** A port range below the kernel's ephemeral range, different on every call. */
export function freshPortRange(size = 40): string {
  const first = 20_000 + Math.floor(Math.random() * (12_000 - size));
  return `${first}-${first + size - 1}`;
}

/** A TCP port that was free a moment ago. */
export function freePort(hostname = "127.0.0.1"): number {
  const listener = Deno.listen({ hostname, port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/** A fresh directory for a relay's state (its generated certificate), removed at exit. */
export function tempStateDir(): string {
  const dir = Deno.makeTempDirSync({ prefix: "porthole-test-" });
  globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
  return dir;
}

/** A relay configuration file holding `text`, removed when the tests end; returns its path. */
export function tempConfigFile(text: string): string {
  const path = Deno.makeTempFileSync({ suffix: ".toml" });
  Deno.writeTextFileSync(path, text);
  globalThis.addEventListener("unload", () => Deno.removeSync(path));
  return path;
}

/**
 * A relay on a run-time port with TLS and a fresh state directory (unless `args` say
 * `--insecure`), its admin API on a run-time port of loopback (unless `args` set `--admin`);
 * resolves once it listens, with its port and certificate fingerprint.
 */
export async function startRelayProcess(
  args: string[] = [],
  env?: Record<string, string>,
): Promise<Proc & { port: number; fingerprint: string; trust: string[] }> {
  const relay = new Proc("relay", [
    "--listen",
    "127.0.0.1:0",
    "--port-range",
    freshPortRange(),
    ...(args.includes("--state-dir") ? [] : ["--state-dir", tempStateDir()]),
    ...(args.includes("--admin") ? [] : ["--admin", "127.0.0.1:0"]),
    ...args,
  ], env);
  const [, port] = await relay.whileStarting(() =>
    relay.waitFor(/listening for agents on .*:(\d+)$/)
  );
  const fingerprint = relay.lines.join("\n").match(/fingerprint \(SHA-256\): (\S+)/)?.[1] ?? "";
  const trust = fingerprint ? ["--fingerprint", fingerprint] : ["--insecure"];
  return Object.assign(relay, { port: Number(port), fingerprint, trust });
}

/**
 * An agent with `services` (id → port on 127.0.0.1), its admin API on a run-time port of
 * loopback (unless `args` set `--admin`); resolves once every service is reachable, with the
 * public port of each.
 */
export async function startAgentProcess(
  relay: { port: number; trust: string[] },
  services: Record<string, number>,
  args: string[] = [],
): Promise<Proc & { publicPort: Record<string, number> }> {
  const agent = new Proc("agent", [
    ...(args.includes("--relay") ? [] : ["--relay", `127.0.0.1:${relay.port}`]),
    ...relay.trust,
    ...Object.entries(services).flatMap(([id, port]) => ["--service", `${id}=127.0.0.1:${port}`]),
    ...(args.includes("--admin") ? [] : ["--admin", "127.0.0.1:0"]),
    ...args,
  ]);
  const publicPort: Record<string, number> = {};
  await agent.whileStarting(async () => {
    for (const id of Object.keys(services)) {
      const [, port] = await agent.waitFor(
        new RegExp(`service ${id} \\(.*\\) is reachable at .*:(\\d+)$`),
      );
      publicPort[id] = Number(port);
    }
  });
  return Object.assign(agent, { publicPort });
}

/** An in-process TCP server; `handle` serves each connection. */
export function startServer(
  handle: (conn: Deno.TcpConn) => Promise<void>,
  hostname = "127.0.0.1",
): { port: number; close(): Promise<void> } & AsyncDisposable {
  const listener = Deno.listen({ hostname, port: 0 });
  const active = new Set<Promise<void>>();
  const loop = (async () => {
    for await (const conn of listener) {
      const served = handle(conn).catch(() => {}).finally(() => {
        closeQuietly(conn);
        active.delete(served);
      });
      active.add(served);
    }
  })().catch(() => {});
  const close = async () => {
    closeQuietly(listener);
    await loop;
    await Promise.all(active);
  };
  return { port: listener.addr.port, close, [Symbol.asyncDispose]: close };
}

/** Serves by echoing every byte back, and half-closes when the client does. */
export async function echo(conn: Deno.TcpConn): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  for (let n; (n = await conn.read(buffer)) !== null;) await writeAll(conn, buffer.subarray(0, n));
  await conn.closeWrite();
}

/** Reads until end-of-stream. */
export async function readAll(conn: Conn): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(64 * 1024);
  for (let n; (n = await conn.read(buffer)) !== null;) chunks.push(buffer.slice(0, n));
  const all = new Uint8Array(chunks.reduce((sum, c) => sum + c.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.length;
  }
  return all;
}

/** Reads exactly `length` bytes, failing on an early end. */
export async function readExactly(conn: Deno.Conn, length: number): Promise<Uint8Array> {
  const data = new Uint8Array(length);
  for (let at = 0; at < length;) {
    const n = await conn.read(data.subarray(at));
    assert(n !== null, `connection ended after ${at} of ${length} bytes`);
    at += n;
  }
  return data;
}

/** A connected pair of loopback sockets. */
export async function socketPair(): Promise<[Deno.TcpConn, Deno.TcpConn]> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [a, b] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
    listener.accept(),
  ]);
  listener.close();
  return [a, b];
}

/** Sends `data` through `port` of `hostname`, half-closes, and returns all that came back. */
export async function echoed(
  port: number,
  data: Uint8Array,
  hostname = "127.0.0.1",
): Promise<Uint8Array> {
  const conn = await Deno.connect({ hostname, port });
  try {
    const [, back] = await Promise.all([
      writeAll(conn, data).then(() => conn.closeWrite()),
      readAll(conn),
    ]);
    return back;
  } finally {
    conn.close();
  }
}

/** Connects to a loopback port. */
export function connect(port: number, hostname = "127.0.0.1"): Promise<Deno.TcpConn> {
  return Deno.connect({ hostname, port });
}

/** Sends `data`, half-closes, and returns everything the peer sends back. */
export async function request(port: number, data: Uint8Array): Promise<Uint8Array> {
  const conn = await connect(port);
  try {
    await writeAll(conn, data);
    await conn.closeWrite();
    return await readAll(conn);
  } finally {
    conn.close();
  }
}

/** `count` bytes of random data. */
export function randomBytes(count: number): Uint8Array {
  const data = new Uint8Array(count);
  for (let at = 0; at < count; at += 65_536) {
    crypto.getRandomValues(data.subarray(at, Math.min(at + 65_536, count)));
  }
  return data;
}

/** Hex SHA-256 of `data`. */
export function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Resolves once `condition()` holds, polling; fails with `what` after `timeoutMs`. */
export async function eventually(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = WAIT_MS,
): Promise<void> {
  const until = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > until) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Resolves once something accepts TCP connections on 127.0.0.1:`port`. */
export function listening(port: number, what: string): Promise<void> {
  return eventually(async () => {
    try {
      closeQuietly(await Deno.connect({ hostname: "127.0.0.1", port }));
      return true;
    } catch {
      return false;
    }
  }, `${what} listens on ${port}`);
}

/** A server process a test started (nginx, sshd, openssl s_server), and how to stop it. */
export interface Daemon extends AsyncDisposable {
  stop(): Promise<void>;
}

/** Where the admin API of a relay or agent process listens (`HOST:PORT`), from its log. */
export async function adminOf(proc: Proc): Promise<string> {
  const [, address] = await proc.waitFor(/(?:relay|agent) admin API on http:\/\/(\S+)\//);
  return address;
}

/** The end of a daemon's stderr kept for the error when it does not start. */
const DAEMON_STDERR_KEPT = 4_096;

/**
 * Starts `command` with `args` and resolves once it accepts connections on `port`; `stop` (and
 * leaving the test's scope) ends it with SIGTERM and then removes `dir`, if given. If it exits or
 * never listens, it is stopped and the error carries the end of its stderr (a bad config says why).
 */
export async function startDaemon(
  command: string,
  args: string[],
  port: number,
  dir?: string,
): Promise<Daemon> {
  const child = new Deno.Command(command, { args, stdin: "null", stdout: "null", stderr: "piped" })
    .spawn();
  let stderr = "";
  const drained = (async () => {
    for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) {
      stderr = (stderr + text).slice(-DAEMON_STDERR_KEPT);
    }
  })();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
    await Promise.all([child.status, drained]);
    if (dir) await Deno.remove(dir, { recursive: true });
  };
  const exited = child.status.then(({ code }) => {
    throw new Error(`${command} exited (code ${code}) before listening on ${port}`);
  });
  try {
    await Promise.race([listening(port, command), exited]);
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}; its stderr:\n${stderr}`);
  }
  return { stop, [Symbol.asyncDispose]: stop };
}

/** Connections to a test relay, trusting it as its agents would. */
export function relayDialer(relay: { port: number; fingerprint: string }): RelayDialer {
  const at = { hostname: "127.0.0.1", port: relay.port };
  return relay.fingerprint
    ? new TlsDialer(at, { kind: "fingerprint", sha256: relay.fingerprint })
    : new TcpDialer(at);
}

/**
 * The test as the relay: accepts an agent's control channel on `listener`, proves itself with
 * the test secret, checks the agent's proof, and sends `welcome` (with `spares` and an `early`
 * window if given); returns the agent's `hello` with the channel.
 */
export async function acceptAgent(
  listener: { accept(): Promise<Conn> },
  spares?: number,
  early?: number,
): Promise<
  {
    channel: ControlChannel<AgentMessage>;
    session: string;
    agent: string;
    hello: AgentMessageOf<"hello">;
  }
> {
  const channel = new ControlChannel(await listener.accept(), decodeAgentMessage);
  const hello = await channel.receive();
  assert(hello?.type === "hello", `expected hello, got ${JSON.stringify(hello)}`);
  assertEquals(await challengeAgent(channel, hello, secretKey(SECRET)), "proven");
  const session = randomToken();
  channel.send({
    type: "welcome",
    session,
    heartbeatMs: 10_000,
    ...(spares ? { spares } : {}),
    ...(early ? { early } : {}),
  });
  return { channel, session, agent: hello.agent, hello };
}

/**
 * An agent speaking the protocol from inside the test, to send what a real agent would not;
 * `early` is the early-data window it asks for (none if absent).
 */
export async function fakeAgent(
  relay: { port: number; fingerprint: string },
  id: string,
  early?: number,
): Promise<
  { channel: ControlChannel<RelayMessage>; session: string; welcome: RelayMessageOf<"welcome"> }
> {
  const dialer = relayDialer(relay);
  const channel = new ControlChannel(await dialer.dial(WAIT_MS), decodeRelayMessage);
  const welcome = await greetRelay(
    channel,
    id,
    secretKey(SECRET),
    formatHostPort(dialer.relay),
    early,
  );
  return { channel, session: welcome.session, welcome };
}
