/**
 * The relay's fronts, opened together: the port front always, and each front that routes by
 * name when its flag asks for it. A new front is one file beside these and one line here.
 */

import { createLogger } from "../log.ts";
import { formatHostPort, type HostPort } from "../net.ts";
import type { Front, FrontContext } from "./front.ts";
import { HttpFront } from "./http.ts";
import { PortFront, type PortFrontOptions } from "./ports.ts";
import { ProxyFront } from "./proxy.ts";

/** Which fronts to open, and how. */
export interface FrontsOptions {
  ports: PortFrontOptions;
  /** `--http` and `--domain`: HTTP services by host name (`ID.DOMAIN`) on one port. */
  http?: { listen: HostPort; domain: string };
  /** `--proxy`: SOCKS5 and HTTP CONNECT, the target naming the service. */
  proxy?: { listen: HostPort };
}

const log = createLogger("relay");

/** Opens the fronts `options` ask for; throws (with none left open) if one cannot listen. */
export function openFronts(options: FrontsOptions, context: FrontContext): Front[] {
  const fronts: Front[] = [new PortFront(options.ports, context)];
  try {
    const { http, proxy } = options;
    if (http) {
      const front = HttpFront.open(http, context);
      fronts.push(front);
      log.info(
        `listening for HTTP clients on ${
          formatHostPort(front.address)
        } (services at ID.${http.domain})`,
      );
    }
    if (proxy) {
      const front = ProxyFront.open({ ...proxy, domain: http?.domain }, context);
      fronts.push(front);
      log.info(`listening for SOCKS5 and HTTP CONNECT clients on ${formatHostPort(front.address)}`);
    }
  } catch (error) {
    fronts.forEach((front) => front.close());
    throw error;
  }
  return fronts;
}
