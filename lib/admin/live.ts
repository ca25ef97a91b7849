/**
 * Client connections as operators see them (the admin API, lib/admin/server.ts), on the relay or
 * the agent: those spliced now, with their bytes each way as they move, and per service the connections and
 * bytes since the process started, and how long connections took to set up.
 */

import { Histogram, type MetricFamily } from "./metrics.ts";

/** Upper bounds, in seconds, of the set-up time histogram's buckets. */
export const SETUP_SECONDS_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** One client connection spliced now. */
export interface LiveConnection {
  service: string;
  agent: string;
  client: string;
  /** When the client connected (`performance.now()`). */
  since: number;
  /** Closes it (both of its connections), if the one who counts it can. */
  close?(): void;
  /** Bytes that crossed before the splice. */
  moved: { fromClient: number; toClient: number };
  /** Bytes from the client and to it in the splice so far (it counts them as they move). */
  spliced: { aToB: { bytes: number }; bToA: { bytes: number } };
}

const fromClient = (live: LiveConnection) => live.moved.fromClient + live.spliced.aToB.bytes;
const toClient = (live: LiveConnection) => live.moved.toClient + live.spliced.bToA.bytes;

interface ServiceTotals {
  connections: number;
  fromClient: number;
  toClient: number;
}

/** Live connections and per-service totals. */
export class LiveConnections {
  readonly #active = new Set<LiveConnection>();
  readonly #closed = new Map<string, ServiceTotals>();
  readonly #setup = new Histogram(SETUP_SECONDS_BUCKETS);
  /** Connections spliced now by service and agent (`service agent`), for least connections. */
  readonly #perAgent = new Map<string, number>();

  /**
   * Counts a connection whose splice starts now, `moved` bytes having crossed before it; returns
   * it, for the splice to count into and {@link end} to take back.
   */
  start(
    entry: { service: string; agent: string; client: string; since: number; close?(): void },
    moved: { fromClient: number; toClient: number },
  ): LiveConnection {
    this.#setup.observe((performance.now() - entry.since) / 1000);
    const live = { ...entry, moved, spliced: { aToB: { bytes: 0 }, bToA: { bytes: 0 } } };
    this.#active.add(live);
    const key = `${entry.service} ${entry.agent}`;
    this.#perAgent.set(key, (this.#perAgent.get(key) ?? 0) + 1);
    return live;
  }

  /** Connections of `service` spliced now through `agent`. */
  count(service: string, agent: string): number {
    return this.#perAgent.get(`${service} ${agent}`) ?? 0;
  }

  /** Closes the connections of `service` spliced now; returns how many there were. */
  closeService(service: string): number {
    const closing = [...this.#active].filter((live) => live.service === service);
    closing.forEach((live) => live.close?.());
    return closing.length;
  }

  /** The connection ended; its bytes join its service's totals. */
  end(live: LiveConnection): void {
    if (!this.#active.delete(live)) return;
    const key = `${live.service} ${live.agent}`;
    const left = this.#perAgent.get(key)! - 1;
    if (left > 0) this.#perAgent.set(key, left);
    else this.#perAgent.delete(key);
    const totals = this.#totalsOf(live.service);
    totals.connections++;
    totals.fromClient += fromClient(live);
    totals.toClient += toClient(live);
  }

  /** Connections spliced now, oldest first, as `/status` lists them. */
  list(): {
    service: string;
    agent: string;
    client: string;
    from_client: number;
    to_client: number;
    age_s: number;
  }[] {
    const now = performance.now();
    return [...this.#active].map((live) => ({
      service: live.service,
      agent: live.agent,
      client: live.client,
      from_client: fromClient(live),
      to_client: toClient(live),
      age_s: Math.round((now - live.since) / 100) / 10,
    }));
  }

  /** Their metric families: active and total connections, bytes, set-up time. */
  metrics(): MetricFamily[] {
    const services = new Map<string, ServiceTotals & { active: number }>();
    for (const [service, totals] of this.#closed) services.set(service, { ...totals, active: 0 });
    for (const live of this.#active) {
      const totals = services.get(live.service) ??
        { connections: 0, fromClient: 0, toClient: 0, active: 0 };
      totals.active++;
      totals.connections++;
      totals.fromClient += fromClient(live);
      totals.toClient += toClient(live);
      services.set(live.service, totals);
    }
    const each = (value: (totals: ServiceTotals & { active: number }) => number) =>
      [...services].map(([service, totals]) => ({ labels: { service }, value: value(totals) }));
    return [
      {
        name: "porthole_connections_active",
        help: "Client connections spliced to their service now.",
        type: "gauge",
        samples: each((totals) => totals.active),
      },
      {
        name: "porthole_connections_total",
        help: "Client connections spliced to their service since the process started.",
        type: "counter",
        samples: each((totals) => totals.connections),
      },
      {
        name: "porthole_bytes_total",
        help: "Bytes carried per service, from the client (in) and to it (out).",
        type: "counter",
        samples: [...services].flatMap(([service, totals]) => [
          { labels: { service, direction: "in" }, value: totals.fromClient },
          { labels: { service, direction: "out" }, value: totals.toClient },
        ]),
      },
      {
        name: "porthole_connection_setup_seconds",
        help:
          "Time from a client's arrival (at the relay; at the agent, its connect) to its splice.",
        type: "histogram",
        samples: this.#setup.samples(),
      },
    ];
  }

  #totalsOf(service: string): ServiceTotals {
    let totals = this.#closed.get(service);
    if (!totals) this.#closed.set(service, totals = { connections: 0, fromClient: 0, toClient: 0 });
    return totals;
  }
}
