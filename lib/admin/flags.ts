/** `--admin` and `--admin-token-file`, as relay and agent take them (lib/admin/server.ts). */

import { parseAddress, readFlagFile, UsageError } from "../cli.ts";
import type { HostPort } from "../address.ts";
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

/** The flags that say where an admin API is and what token it wants. */
export interface AdminFlagValues {
  admin: string;
  "admin-token-file"?: string;
}

/**
 * Where `--admin` says the admin API is (`fallback` for `off`, for a command that asks it), and
 * the token of `--admin-token-file`, if one is given.
 */
export async function adminEndpoint(
  flags: AdminFlagValues,
  fallback: string,
): Promise<{ address: HostPort; token?: string }> {
  const tokenFile = flags["admin-token-file"];
  const token = tokenFile && (await readFlagFile(tokenFile, "--admin-token-file")).trim();
  const address = parseAddress(flags.admin === "off" ? fallback : flags.admin, "--admin");
  return { address, ...(token ? { token } : {}) };
}

/**
 * Starts `program`'s admin API where `--admin` says (none for `off`), with the token of
 * `--admin-token-file`. On the default address, a port already taken (another relay on this
 * machine) is a warning, not a failure to start; an address given is required to work.
 */
export async function adminFromFlags(
  flags: AdminFlagValues,
  program: string,
  defaultAddress: string,
  routes: AdminRoutes,
): Promise<Admin | undefined> {
  if (flags.admin === "off") return undefined;
  const { address, token } = await adminEndpoint(flags, defaultAddress);
  const problem = tokenProblem(address, token);
  if (problem) throw new UsageError(problem);
  try {
    return await startAdmin({ address, token, program, routes });
  } catch (error) {
    if (flags.admin !== defaultAddress || !/in use/i.test((error as Error).message)) throw error;
    log.warn(`${(error as Error).message}; going on without it`);
    return undefined;
  }
}
