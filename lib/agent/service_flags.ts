/**
 * The agent's flags that describe its services: `--service` (what each is, where it is, which
 * public port it asks for), `--host` (its other host names) and `--proxy-protocol` (the header
 * it reads). The admin API's and CLI's `service add` take the same forms.
 */

import { parseServiceSpec, UsageError } from "../cli.ts";
import type { AgentService } from "./serve.ts";

/**
 * Parses the agent's `--service ID[@PUBLIC_PORT]=[http://|tls://]HOST:PORT` flags: what the
 * service speaks (`http://`, `tls://`, or raw TCP) decides which of the relay's fronts reach it.
 *
 * @example
 * ```ts
 * parseAgentServices(["web@8080=http://127.0.0.1:3000"]); // web → 127.0.0.1:3000, HTTP, port 8080
 * ```
 */
export function parseAgentServices(texts: string[]): Map<string, AgentService> {
  const services = new Map<string, AgentService>();
  for (const text of texts) {
    const match = /^([^=@]*)(?:@(\d+))?=(?:(http|tls):\/\/)?([^/]*)\/?$/.exec(text);
    const port = match?.[2] === undefined ? undefined : Number(match[2]);
    if (port !== undefined && !(port >= 1 && port <= 65535)) {
      throw new UsageError(`--service "${text}": public port ${port} is not within 1-65535`);
    }
    const [id, target] = parseServiceSpec(match ? `${match[1]}=${match[4]}` : text, "--service");
    if (services.has(id)) throw new UsageError(`--service names service ${id} twice`);
    const kind = (match?.[3] ?? "tcp") as AgentService["kind"];
    services.set(id, { target, port, kind });
  }
  return services;
}

/** Applies `--host ID=NAME` flags: host names service ID claims besides `ID.DOMAIN`. */
export function applyHostNames(services: Map<string, AgentService>, texts: string[]): void {
  for (const text of texts) {
    const [, id, name] = /^([^=]+)=([A-Za-z0-9*][A-Za-z0-9.-]*)$/.exec(text) ?? [];
    if (!id) {
      throw new UsageError(`--host "${text}" is not ID=NAME (example: web=www.example.com)`);
    }
    const service = services.get(id);
    if (!service) throw new UsageError(`--host names ${id}, which no --service has`);
    service.hosts = [...service.hosts ?? [], name.toLowerCase()];
  }
}

/** Applies `--proxy-protocol ID=VERSION` flags (`v1`, `v2`) to the agent's `services`. */
export function applyProxyProtocol(services: Map<string, AgentService>, texts: string[]): void {
  for (const text of texts) {
    const [, id, version] = /^([^=]+)=v([12])$/.exec(text) ?? [];
    if (!id) {
      throw new UsageError(`--proxy-protocol "${text}" is not ID=v1 or ID=v2 (example: web=v2)`);
    }
    const service = services.get(id);
    if (!service) throw new UsageError(`--proxy-protocol names ${id}, which no --service has`);
    service.proxyProtocol = Number(version) as 1 | 2;
  }
}
