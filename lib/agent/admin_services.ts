/**
 * The agent's services through its admin API (lib/admin/server.ts), for `agent service add|rm|ls`
 * and anything else on the box that publishes a service: `GET /services`, `PUT /services/ID`
 * with `{"target": "HOST:PORT", "kind": "http", "port": 8080, "hosts": [...], "proxy_protocol":
 * "v2"}` (all but `target` optional) to add or change one, `DELETE /services/ID` to remove one.
 * Changes apply live (lib/agent/live_services.ts) and last until the next SIGHUP or restart,
 * which go back to the flags and the --config file.
 */

import { SERVICE_ID_PATTERN } from "../cli.ts";
import { applyHostNames, applyProxyProtocol, parseAgentServices } from "./service_flags.ts";
import { formatHostPort } from "../address.ts";
import type { Agent } from "./agent.ts";
import type { AgentService } from "./serve.ts";

/** A service as the admin API takes and gives it. */
export interface ServiceBody {
  target: string;
  kind?: string;
  port?: number;
  hosts?: string[];
  proxy_protocol?: string;
}

/** `service` as the admin API takes it. */
export function bodyOf(service: AgentService): ServiceBody {
  return {
    target: formatHostPort(service.target),
    ...(service.kind && service.kind !== "tcp" ? { kind: service.kind } : {}),
    ...(service.port === undefined ? {} : { port: service.port }),
    ...(service.hosts?.length ? { hosts: service.hosts } : {}),
    ...(service.proxyProtocol ? { proxy_protocol: `v${service.proxyProtocol}` } : {}),
  };
}

/** Service `id` from a body, checked as the flags that say the same are; throws saying why not. */
export function serviceOf(id: string, body: unknown): AgentService {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new Error('the body must be a JSON object such as {"target": "127.0.0.1:3000"}');
  }
  const { target, kind = "tcp", port, hosts = [], proxy_protocol } = body as Record<
    string,
    unknown
  >;
  if (typeof target !== "string") throw new Error('"target" must be HOST:PORT');
  if (!["tcp", "http", "tls"].includes(kind as string)) {
    throw new Error('"kind" must be tcp, http or tls');
  }
  if (port !== undefined && !Number.isInteger(port)) throw new Error('"port" must be a number');
  if (!Array.isArray(hosts)) throw new Error('"hosts" must be a list of host names');
  const publicPort = port === undefined ? "" : `@${port}`;
  const scheme = kind === "tcp" ? "" : `${kind}://`;
  const services = parseAgentServices([`${id}${publicPort}=${scheme}${target}`]);
  applyHostNames(services, hosts.map((host) => `${id}=${host}`));
  if (proxy_protocol !== undefined) applyProxyProtocol(services, [`${id}=${proxy_protocol}`]);
  return services.get(id)!;
}

/** The admin API's `/services` routes for `agent`. */
export function serviceRoutes(agent: Agent) {
  return async (request: Request, path: string): Promise<Response | undefined> => {
    if (path === "/services" && request.method === "GET") {
      return Response.json(
        Object.fromEntries([...agent.services].map(([id, s]) => [id, bodyOf(s)])),
      );
    }
    const match = /^\/services\/([^/]+)$/.exec(path);
    if (!match) return undefined;
    const id = decodeURIComponent(match[1]);
    if (!SERVICE_ID_PATTERN.test(id)) {
      return new Response(`"${id}" is no service id (letters, digits, '.', '_', '-')\n`, {
        status: 400,
      });
    }
    const next = new Map(agent.services);
    if (request.method === "PUT") {
      try {
        next.set(id, serviceOf(id, await request.json()));
      } catch (error) {
        return new Response(`service ${id}: ${(error as Error).message}\n`, { status: 400 });
      }
    } else if (request.method === "DELETE") {
      if (!next.delete(id)) return new Response(`no service ${id}\n`, { status: 404 });
    } else {
      return new Response("PUT or DELETE\n", { status: 405, headers: { allow: "PUT, DELETE" } });
    }
    return Response.json(agent.updateServices(next));
  };
}
