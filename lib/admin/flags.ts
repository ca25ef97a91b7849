/** `--admin` and `--admin-token-file`, as relay and agent take them (lib/admin/server.ts). */

import { parseAddress, readFlagFile, UsageError } from "../cli.ts";
import { createLogger } from "../log.ts";
import { type Admin, type AdminRoutes, startAdmin, tokenProblem } from "./server.ts";

/** Where the relay's admin API listens unless `--admin` says otherwise. */
export const RELAY_ADMIN_ADDRESS = "127.0.0.1:7836";
/** Where the agent's admin API listens unless `--admin` says otherwise. */
export const AGENT_ADMIN_ADDRESS = "127.0.0.1:7837";

/** The `--admin` and `--admin-token-file` flags of a program whose default is `address`. */
export function adminFlags(address: string) {
  return {
    admin: {
      value: "HOST:PORT",
      default: address,
      help: "Where the admin API listens (GET /status, /metrics for Prometheus, /healthz), or " +
        "off. Beyond loopback it needs --admin-token-file.",
      example: "--admin off",
    },
    "admin-token-file": {
      value: "FILE",
      help: "File holding the token admin requests must carry (Authorization: Bearer TOKEN); " +
        "required when --admin is not on loopback.",
    },
  } as const;
}

const log = createLogger("admin");

/**
 * Starts `program`'s admin API where `--admin` says (none for `off`), with the token of
 * `--admin-token-file`. On the default address, a port already taken (another relay on this
 * machine) is a warning, not a failure to start; an address given is required to work.
 */
export async function adminFromFlags(
  flags: { admin: string; "admin-token-file"?: string },
  program: string,
  defaultAddress: string,
  routes: AdminRoutes,
): Promise<Admin | undefined> {
  if (flags.admin === "off") return undefined;
  const tokenFile = flags["admin-token-file"];
  const token = tokenFile && (await readFlagFile(tokenFile, "--admin-token-file")).trim();
  const address = parseAddress(flags.admin, "--admin");
  const problem = tokenProblem(address, token || undefined);
  if (problem) throw new UsageError(problem);
  try {
    return await startAdmin({ address, token: token || undefined, program, routes });
  } catch (error) {
    if (flags.admin !== defaultAddress || !/in use/i.test((error as Error).message)) throw error;
    log.warn(`${(error as Error).message}; going on without it`);
    return undefined;
  }
}
