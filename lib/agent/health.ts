/**
 * Health checks of the agent's services (`--health-check`): every interval, a TCP connect to the
 * service's target, or an HTTP GET of a path on it (a 2xx or 3xx answer passes). A service starts
 * passing; after `fall` failures in a row it fails, and every relay it is registered with is told
 * (`health` in lib/protocol.ts), so that it gives the service's clients to the other agents of
 * its group, if any; after `rise` passes in a row it passes again and is told so.
 *
 * @example
 * ```ts
 * parseHealthCheck("http:/healthz,interval=5,fall=2");
 * // { kind: "http", path: "/healthz", intervalMs: 5000, timeoutMs: 2000, fall: 2, rise: 2 }
 * ```
 */

import { UsageError } from "../cli.ts";
import { createLogger } from "../log.ts";
import { closeQuietly, describeError, dial } from "../net.ts";
import { formatHostPort, type HostPort } from "../address.ts";
import type { AgentService } from "./serve.ts";

/** Default time between two checks of a service. */
export const HEALTH_INTERVAL_MS = 10_000;
/** Default time a check may take before it counts as failed. */
export const HEALTH_TIMEOUT_MS = 2_000;
/** Default failures in a row that take a service out of rotation. */
export const HEALTH_FALL = 3;
/** Default passes in a row that bring it back. */
export const HEALTH_RISE = 2;

/** How a service is checked. */
export interface HealthCheck {
  kind: "tcp" | "http";
  /** The path an HTTP check gets. */
  path?: string;
  intervalMs: number;
  timeoutMs: number;
  fall: number;
  rise: number;
}

/** Parses `tcp` or `http[:PATH]`, then `,interval=SECS`, `,timeout=SECS`, `,fall=N`, `,rise=N`. */
export function parseHealthCheck(text: string): HealthCheck {
  const [check, ...settings] = text.split(",");
  const [, kind, path] = /^(tcp|http)(?::(\/\S*))?$/.exec(check) ?? [];
  if (!kind || (kind === "tcp" && path)) {
    throw new UsageError(
      `health check "${text}": it starts with tcp, http or http:/PATH (example: http:/healthz)`,
    );
  }
  const check_: HealthCheck = {
    kind: kind as HealthCheck["kind"],
    ...(kind === "http" ? { path: path ?? "/" } : {}),
    intervalMs: HEALTH_INTERVAL_MS,
    timeoutMs: HEALTH_TIMEOUT_MS,
    fall: HEALTH_FALL,
    rise: HEALTH_RISE,
  };
  for (const setting of settings) {
    const [, name, value] = /^(interval|timeout|fall|rise)=(\d+(?:\.\d+)?)$/.exec(setting) ?? [];
    const number = Number(value);
    if (!name || !(number > 0) || (["fall", "rise"].includes(name) && !Number.isInteger(number))) {
      throw new UsageError(
        `health check "${text}": "${setting}" is not interval=SECS, timeout=SECS, fall=N or rise=N`,
      );
    }
    if (name === "interval") check_.intervalMs = number * 1000;
    else if (name === "timeout") check_.timeoutMs = number * 1000;
    else check_[name as "fall" | "rise"] = number;
  }
  return check_;
}

/** Applies `--health-check ID=CHECK` flags to the agent's `services`. */
export function applyHealthChecks(services: Map<string, AgentService>, texts: string[]): void {
  for (const text of texts) {
    const [, id, check] = /^([^=]+)=(.+)$/.exec(text) ?? [];
    if (!id) throw new UsageError(`--health-check "${text}" is not ID=CHECK (example: web=tcp)`);
    const service = services.get(id);
    if (!service) throw new UsageError(`--health-check names ${id}, which no --service has`);
    try {
      service.health = parseHealthCheck(check);
    } catch (error) {
      throw new UsageError(`--health-check ${id}=…: ${(error as Error).message}`);
    }
  }
}

/** Runs one check of `target`; resolves with why it failed, or undefined when it passed. */
export async function checkOnce(target: HostPort, check: HealthCheck): Promise<string | undefined> {
  try {
    if (check.kind === "tcp") {
      closeQuietly(await dial(target, check.timeoutMs));
      return undefined;
    }
    const url = `http://${formatHostPort(target)}${check.path}`;
    const response = await fetch(url, { signal: AbortSignal.timeout(check.timeoutMs) });
    await response.body?.cancel();
    return response.status < 400 ? undefined : `GET ${check.path} answered ${response.status}`;
  } catch (error) {
    return describeError(error);
  }
}

const log = createLogger("agent");

/** A service's checks, run until stopped; `onChange` hears when it starts or stops passing. */
export class HealthWatch {
  #passing = true;
  #streak = 0;
  #timer?: ReturnType<typeof setTimeout>;
  #stopped = false;
  /** Why the last check failed, while failing. */
  reason?: string;

  constructor(
    readonly id: string,
    readonly service: AgentService & { health: HealthCheck },
    readonly onChange: (watch: HealthWatch) => void,
  ) {
    this.#next();
  }

  /** Whether the service passes its checks now. */
  get passing(): boolean {
    return this.#passing;
  }

  /** Stops checking. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #next(): void {
    this.#timer = setTimeout(async () => {
      const problem = await checkOnce(this.service.target, this.service.health);
      if (this.#stopped) return;
      this.#record(problem);
      this.#next();
    }, this.service.health.intervalMs);
    Deno.unrefTimer(this.#timer);
  }

  #record(problem: string | undefined): void {
    const { fall, rise } = this.service.health;
    const agrees = (problem === undefined) === this.#passing;
    this.#streak = agrees ? 0 : this.#streak + 1;
    if (!this.#passing) this.reason = problem ?? this.reason;
    if (this.#streak < (this.#passing ? fall : rise)) return;
    this.#passing = !this.#passing;
    this.#streak = 0;
    this.reason = problem;
    const target = formatHostPort(this.service.target);
    if (this.#passing) log.info(`service ${this.id} (${target}) passes its health checks again`);
    else {
      log.warn(
        `service ${this.id} (${target}) failed ${fall} health checks in a row (${problem}); ` +
          "the relays give it no clients until it passes again",
      );
    }
    this.onChange(this);
  }
}
