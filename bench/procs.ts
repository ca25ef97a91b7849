/**
 * Child processes of the benchmark and what /proc says about them. Every child is registered
 * when started, so {@link stopAll} can end them all on success, on error and on Ctrl-C.
 */

import { denoRunArgs } from "../lib/launch.ts";

/** The repository root, where relay.ts, agent.ts and deno.json live. */
export const ROOT = new URL("..", import.meta.url).pathname;
/** Output lines kept per child (older ones are dropped); enough to explain a failure. */
const KEPT_LINES = 2_000;

const running = new Set<Child>();
/** Temporary directories to remove at the latest in {@link stopAll}. */
const temporary = new Set<string>();

/** A started process whose stdout and stderr lines are collected as they arrive. */
export class Child {
  readonly name: string;
  readonly pid: number;
  /** Output lines of stdout and stderr as they came, the last {@link KEPT_LINES} of them. */
  readonly lines: string[] = [];
  /** Lines of stdout alone, the last {@link KEPT_LINES} of them. */
  readonly stdout: string[] = [];
  /** Lines seen in total, kept or not. */
  lineCount = 0;
  readonly status: Promise<Deno.CommandStatus>;
  #process: Deno.ChildProcess;
  #onLine = new Set<() => void>();
  #drained: Promise<void>;

  constructor(name: string, command: string, args: string[], env: Record<string, string> = {}) {
    this.name = name;
    this.#process = new Deno.Command(command, {
      args,
      cwd: ROOT,
      env: { NO_COLOR: "1", ...env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.pid = this.#process.pid;
    running.add(this);
    this.#drained = Promise.all([
      this.#collect(this.#process.stdout, this.stdout),
      this.#collect(this.#process.stderr),
    ]).then(() => {});
    this.status = this.#drained.then(() => this.#process.status).finally(() =>
      running.delete(this)
    );
  }

  async #collect(stream: ReadableStream<Uint8Array>, also?: string[]): Promise<void> {
    let partial = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (partial + text).split("\n");
      partial = parts.pop()!;
      for (const line of parts) this.#add(line, also);
    }
    if (partial) this.#add(partial, also);
  }

  #add(line: string, also?: string[]): void {
    for (const lines of also ? [this.lines, also] : [this.lines]) {
      lines.push(line);
      if (lines.length > KEPT_LINES) lines.shift();
    }
    this.lineCount++;
    for (const wake of this.#onLine) wake();
  }

  /** True once the process has ended. */
  get exited(): boolean {
    return !running.has(this);
  }

  /** Lines that arrived after the first `since` lines (as far as they are still kept). */
  linesSince(since: number): string[] {
    return this.lines.slice(Math.max(0, this.lines.length - (this.lineCount - since)));
  }

  /** Resolves with the first line matching `pattern`; rejects after `timeoutMs` or on exit. */
  async waitForLine(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    const found = () => this.lines.map((line) => line.match(pattern)).find((match) => match);
    const until = performance.now() + timeoutMs;
    while (true) {
      const match = found();
      if (match) return match;
      if (this.exited) throw new Error(`${this.name} exited:\n${this.lines.join("\n")}`);
      const left = until - performance.now();
      if (left <= 0) throw new Error(`${this.name} printed no ${pattern} in ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.#onLine.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, Math.min(left, 100));
        this.#onLine.add(wake);
      });
    }
  }

  /** Ends the process (SIGTERM, then SIGKILL after 5 s) and waits for it. */
  async stop(): Promise<void> {
    const signal = (name: Deno.Signal) => {
      try {
        this.#process.kill(name);
      } catch {
        // already exited
      }
    };
    signal("SIGTERM");
    const timer = setTimeout(() => signal("SIGKILL"), 5_000);
    await this.status;
    clearTimeout(timer);
  }
}

/** Starts `relay.ts` or `agent.ts` the way a user would, with the permissions from deno.json. */
export function startPorthole(
  script: "relay" | "agent",
  args: string[],
  secret: string,
): Child {
  return new Child(script, Deno.execPath(), [...denoRunArgs(script), ...args], {
    PORTHOLE_SECRET: secret,
  });
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Registers `dir` (made by the benchmark) for removal, now by `remove()` or in {@link stopAll}. */
export function removeLater(dir: string): { remove(): Promise<void> } {
  temporary.add(dir);
  return { remove: () => removeTemporary(dir) };
}

async function removeTemporary(dir: string): Promise<void> {
  if (!temporary.delete(dir)) return;
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}

/** Stops every child still running, then removes the temporary directories left. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((child) => child.stop()));
  await Promise.all([...temporary].map(removeTemporary));
}

/** Clock ticks per second of the /proc CPU counters (`getconf CLK_TCK`). */
export async function clockTicks(): Promise<number> {
  const { stdout } = await new Deno.Command("getconf", { args: ["CLK_TCK"] }).output();
  const ticks = Number(new TextDecoder().decode(stdout).trim());
  if (!(ticks > 0)) throw new Error("getconf CLK_TCK gave no number");
  return ticks;
}

/** User plus system CPU time of a process (all its threads), in clock ticks. */
export function cpuTicks(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Fields after the command name, which is in parentheses and may hold spaces: utime and
  // stime are fields 14 and 15 of the whole line, so 12 and 13 of the rest (from 1).
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

/** Resident memory of a process (VmRSS), in bytes. */
export function rssBytes(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kib = status.match(/^VmRSS:\s+(\d+) kB$/m);
  if (!kib) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kib[1]) * 1024;
}

/** Open file descriptors of a process (sockets, pipes, files). */
export function openFds(pid: number): number {
  let count = 0;
  for (const _ of Deno.readDirSync(`/proc/${pid}/fd`)) count++;
  return count;
}

/** Interval of the samples of {@link watchRss} and {@link watchFds}. */
const SAMPLE_MS = 100;

/** A value per process (RSS, open fds) when watching started and the highest seen since. */
export interface Watch<K extends string> {
  idle: Record<K, number>;
  peak: Record<K, number>;
  /** Takes a last sample and stops. */
  stop(): void;
}

/** Samples `read` for each of `pids` (name → pid) every {@link SAMPLE_MS} until stopped. */
function watch<K extends string>(pids: Record<K, number>, read: (pid: number) => number): Watch<K> {
  const names = Object.keys(pids) as K[];
  const readAll = () => Object.fromEntries(names.map((name) => [name, read(pids[name])]));
  const idle = readAll() as Record<K, number>;
  const peak = { ...idle };
  const sample = () => {
    const now = readAll();
    for (const name of names) peak[name] = Math.max(peak[name], now[name]);
  };
  const timer = setInterval(sample, SAMPLE_MS);
  return {
    idle,
    peak,
    stop() {
      clearInterval(timer);
      sample();
    },
  };
}

/** Samples the RSS (bytes) of `pids` (name → pid) until stopped. */
export function watchRss<K extends string>(pids: Record<K, number>): Watch<K> {
  return watch(pids, rssBytes);
}

/** Samples the open file descriptors of `pids` (name → pid) until stopped. */
export function watchFds<K extends string>(pids: Record<K, number>): Watch<K> {
  return watch(pids, openFds);
}

/** The soft limit on open files of a process. */
export function openFileLimit(pid: number): number {
  const limits = Deno.readTextFileSync(`/proc/${pid}/limits`);
  const soft = limits.match(/^Max open files\s+(\d+|unlimited)/m)?.[1];
  if (!soft) throw new Error(`no open-file limit for process ${pid}`);
  return soft === "unlimited" ? Infinity : Number(soft);
}
