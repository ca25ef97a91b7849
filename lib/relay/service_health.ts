/**
 * `GET /healthz/SERVICE` on the relay's admin API, for a load balancer in front of several relays
 * (HAProxy's `option httpchk`): 200 while an agent serving SERVICE is attached to this relay and
 * passes its health checks, 503 otherwise. A balancer checking it sends the service's clients
 * only to relays that can serve them, where a check of the public port alone passes on a relay
 * whose agents are away.
 */

import type { MemberState } from "./registry.ts";

/**
 * The admin route for `/healthz/SERVICE`, given the members of each service on this relay and
 * whether it is shutting down (then every service answers 503: new clients should go elsewhere).
 */
export function serviceHealthRoute<M>(
  members: (service: string) => MemberState<M>[],
  draining: () => boolean,
): (request: Request, path: string) => Promise<Response | undefined> {
  return (request, path) => {
    const id = path.match(/^\/healthz\/([^/]+)$/)?.[1];
    if (id === undefined || !["GET", "HEAD"].includes(request.method)) {
      return Promise.resolve(undefined);
    }
    const service = decodeURIComponent(id);
    const all = members(service);
    const passing = all.filter((member) => member.healthy).length;
    const answer = (status: number, text: string) =>
      Promise.resolve(new Response(`service ${service}: ${text}\n`, { status }));
    if (draining()) return answer(503, "the relay is shutting down");
    if (all.length === 0) return answer(503, "no agent serving it is attached to this relay");
    if (passing === 0) return answer(503, `its ${all.length} agent(s) fail their health checks`);
    return answer(200, `${passing} of ${all.length} agent(s) in rotation`);
  };
}
