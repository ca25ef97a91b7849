/**
 * The relay's fronts, opened together: the port front always, and each front that routes by
 * name when its flag asks for it. A new front is one file beside these and one line here.
 */

import { createLogger } from "../log.ts";
import { formatHostPort, type HostPort } from "../address.ts";
import type { CertifiedKey } from "../transport/certificate.ts";
import type { Front, FrontContext } from "./front.ts";
import { HttpFront } from "./http.ts";
import { CertificateFiles } from "./certificates.ts";
import { HttpsFront, type HttpsFrontOptions } from "./https.ts";
import { PortFront, type PortFrontOptions } from "./ports.ts";
import { ProxyFront } from "./proxy.ts";
import { RealClients } from "./real_client.ts";

/** Which fronts to open, and how. */
export interface FrontsOptions {
  ports: PortFrontOptions;
  /** `--domain`: services answer to `ID.DOMAIN` on the fronts that route by name. */
  domain?: string;
  /** `--http`: HTTP services by host name on one port (needs the domain). */
  http?: { listen: HostPort };
  /**
   * `--https`: TLS by server name, terminated with `certificates` or passed through; `agents`:
   * the relay's own names, handed on to the agent port (`--https-agents`).
   */
  https?: { listen: HostPort; certificates: CertifiedKey[]; agents?: HttpsFrontOptions["agents"] };
  /** `--proxy`: SOCKS5 and HTTP CONNECT, the target naming the service. */
  proxy?: { listen: HostPort };
  /** `--proxy-protocol-from`: load balancers whose PROXY headers name the real client. */
  trustedProxies?: string[];
}

const log = createLogger("relay");

/** Opens the fronts `options` ask for; throws (with none left open) if one cannot listen. */
export async function openFronts(
  options: FrontsOptions,
  arrivals: Omit<FrontContext, "clientOf">,
): Promise<Front[]> {
  const realClients = await RealClients.create(options.trustedProxies ?? []);
  const context = { ...arrivals, clientOf: (conn: Deno.TcpConn) => realClients.of(conn) };
  const fronts: Front[] = [new PortFront(options.ports, context)];
  const { domain = "", http, https, proxy } = options;
  const names = ` (services at ID.${domain})`;
  const opened = (front: Front & { address: HostPort }, clients: string, note = "") => {
    fronts.push(front);
    log.info(`listening for ${clients} on ${formatHostPort(front.address)}${note}`);
  };
  try {
    if (http) opened(HttpFront.open({ ...http, domain }, context), "HTTP clients", names);
    if (https) {
      const certificates = new CertificateFiles(https.certificates);
      opened(HttpsFront.open({ ...https, domain, certificates }, context), "HTTPS clients", names);
    }
    if (proxy) {
      opened(ProxyFront.open({ ...proxy, domain }, context), "SOCKS5 and HTTP CONNECT clients");
    }
  } catch (error) {
    fronts.forEach((front) => front.close());
    throw error;
  }
  return fronts;
}
