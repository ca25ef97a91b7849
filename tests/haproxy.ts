/**
 * A real HAProxy for tests, from Debian's package (`make test` installs it): in the foreground,
 * with a stats socket in a temporary directory added to the config the test gives.
 */

import { type Daemon, readAll, startDaemon } from "./helpers.ts";
import { writeAll } from "../lib/net.ts";

/** A running HAProxy: its servers' states, and how to stop it. */
export interface HAProxy extends Daemon {
  /** What the stats socket says of each backend server (`UP`, `DOWN`, …), by server name. */
  servers(): Promise<Record<string, string>>;
}

/**
 * Starts HAProxy with `config` (its sections other than `global`); resolves once it accepts
 * connections on `port`, which `config` must bind.
 */
export async function startHAProxy(config: string, port: number): Promise<HAProxy> {
  const dir = await Deno.makeTempDir({ prefix: "porthole-haproxy-" });
  const socket = `${dir}/stats.sock`;
  await Deno.writeTextFile(`${dir}/haproxy.cfg`, `global\n    stats socket ${socket}\n${config}`);
  const haproxy = await startDaemon("haproxy", ["-db", "-f", `${dir}/haproxy.cfg`], port, dir);
  const servers = async () => {
    const conn = await Deno.connect({ transport: "unix", path: socket });
    try {
      await writeAll(conn, new TextEncoder().encode("show stat\n"));
      const csv = new TextDecoder().decode(await readAll(conn));
      // # pxname,svname,…: the server's name is field 1, its status field 17
      const rows = csv.split("\n").map((line) => line.split(",")).filter((row) =>
        row.length > 17 && !row[0].startsWith("#") && !["FRONTEND", "BACKEND"].includes(row[1])
      );
      return Object.fromEntries(rows.map((row) => [row[1], row[17]]));
    } finally {
      conn.close();
    }
  };
  return { servers, ...haproxy };
}
