/**
 * Which path to the relay the agent uses (the paths: lib/agent/relay_paths.ts). Each attempt
 * tries the paths best first and keeps the first whose session completes the handshake; later
 * attempts start from the path chosen, so a reconnection does not wait on paths known to fail.
 * While a session runs on a worse path, the better ones are dialled every
 * {@link PATH_RECHECK_MS} (`--path-recheck`); once one answers, the session ends and the next
 * attempt tries them all again. A route that cannot open a connection at all (the relay or the
 * proxy unreachable) is not tried again in the same attempt with another transport.
 */

import { pause } from "../backoff.ts";
import { createLogger } from "../log.ts";
import { closeQuietly } from "../net.ts";
import type { Route } from "../transport/transport.ts";
import type { RelayPath } from "./relay_paths.ts";
import { AgentFatalError, type SessionEnd } from "./session.ts";

/** Default pause between checks of the better paths while a session runs on a worse one. */
export const PATH_RECHECK_MS = 10 * 60_000;
/** Time a check of a better path may take (its dial, and its TLS and WebSocket handshakes). */
const CHECK_TIMEOUT_MS = 5_000;

/** Runs one session over `path`; `onEstablished` is called once its handshake completes. */
export type SessionOver = (path: RelayPath, onEstablished: () => void) => Promise<SessionEnd>;

const log = createLogger("agent");

/** The paths to the relay, and the one in use. */
export class PathChoice {
  #paths: RelayPath[];
  #recheckMs: number;
  #chosen?: RelayPath;
  #tryAll = true;

  constructor(paths: RelayPath[], recheckMs = PATH_RECHECK_MS) {
    if (paths.length === 0) throw new Error("no path to the relay");
    this.#paths = paths;
    this.#recheckMs = recheckMs;
  }

  /** The path of the last session that completed its handshake. */
  get chosen(): RelayPath | undefined {
    return this.#chosen;
  }

  /**
   * Runs sessions over the paths to try until one completes its handshake, and returns how that
   * one ended; or, when none does, why they all failed. Throws {@link AgentFatalError} when the
   * relay refused the agent, or when every path failed for a reason retrying cannot fix.
   */
  async attempt(over: SessionOver): Promise<SessionEnd> {
    const failures: { path: RelayPath; reason: string; fatal?: AgentFatalError }[] = [];
    const unreachable = new Set<Route>();
    for (const path of this.#toTry()) {
      if (unreachable.has(path.route)) continue;
      let ended;
      try {
        ended = await over(path, () => this.#established(path, failures));
      } catch (error) {
        if (!(error instanceof AgentFatalError) || !error.ofPath || this.#paths.length === 1) {
          throw error;
        }
        failures.push({ path, reason: error.message, fatal: error });
        continue;
      }
      if (ended.established) return ended;
      failures.push({ path, reason: ended.reason });
      if (ended.unreachable) unreachable.add(path.route);
    }
    if (failures.every((failure) => failure.fatal)) {
      throw failures.length === 1 ? failures[0].fatal! : new AgentFatalError(listed(failures));
    }
    const reason = failures.length === 1
      ? failures[0].reason
      : `no path works (${listed(failures)})`;
    return { reason, established: false };
  }

  /**
   * While a session runs on `path`, dials the better paths every recheck interval; resolves with
   * why the session should end once one answers (the next attempt then tries them all), or with
   * undefined when `signal` aborts (the session ended) or there is no better path.
   */
  async betterThan(path: RelayPath, signal: AbortSignal): Promise<string | undefined> {
    const better = this.#paths.slice(0, this.#paths.indexOf(path));
    while (better.length > 0 && await pause(this.#recheckMs, signal)) {
      for (const candidate of better) {
        const conn = await candidate.dialer.dial(CHECK_TIMEOUT_MS).catch(() => undefined);
        if (!conn) continue;
        await conn.closeWrite().catch(() => {}); // a clean end: the relay just lets it go
        closeQuietly(conn);
        if (signal.aborted) return undefined;
        this.#tryAll = true;
        return `the better path ${candidate.name} to the relay answers again; moving to it`;
      }
    }
    return undefined;
  }

  /** From the chosen path on, unless the better ones are to be tried again. */
  #toTry(): RelayPath[] {
    const at = this.#chosen ? this.#paths.indexOf(this.#chosen) : 0;
    if (at <= 0 || this.#tryAll) {
      this.#tryAll = false;
      return this.#paths;
    }
    return this.#paths.slice(at);
  }

  /** Logs a change of path, with why the better ones failed. */
  #established(path: RelayPath, failures: { path: RelayPath; reason: string }[]): void {
    if (path !== this.#chosen && (failures.length > 0 || this.#chosen)) {
      log.info(
        `using the path ${path.name} to the relay` +
          (failures.length ? `; better paths failed: ${listed(failures)}` : ""),
      );
    }
    this.#chosen = path;
  }
}

function listed(failures: { path: RelayPath; reason: string }[]): string {
  return failures.map(({ path, reason }) => `${path.name}: ${reason}`).join("; ");
}
