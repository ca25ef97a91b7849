/**
 * Serving one client with early data (S8–S10 and S9b in docs/flow.md; the mechanism in
 * lib/early.ts): the agent dials the service at once, writes it the client's bytes that come
 * early over the control channel, and sends the service's answer back the same way, while the
 * data channel to the relay is still being opened. Once it is up, the `data` frame says how many
 * bytes went early, `ready` says how many came, and the two ends are spliced from there, every
 * byte in order.
 */

import { EarlyPump, EarlySink, EarlySinks } from "../early.ts";
import { openDataChannel } from "../handshake.ts";
import { createLogger } from "../log.ts";
import { closeQuietly, type Conn, describeError, dial, writeAll } from "../net.ts";
import { formatHostPort } from "../address.ts";
import { HANDSHAKE_TIMEOUT_MS, logId, type RelayMessageOf } from "../protocol.ts";
import { DIAL_TIMEOUT_MS, proxyHeaderFor, type ServeContext, spliceService } from "./serve.ts";

/** A session's early data: its window, its connections' sinks, and how to send. */
export interface EarlyData {
  /** Bytes per connection and direction that may go early (the relay's grant; `connect` says per connection). */
  window: number;
  /** Where the relay's `early` frames for each connection go. */
  sinks: EarlySinks;
  /** Sends the service's bytes for connection `conn` over the control channel. */
  send(conn: string, bytes: Uint8Array): Promise<void>;
}

const log = createLogger("agent");

/** S8–S10 with early data: serves `request`'s client as `serveClient` does, but sooner. */
export async function serveEarly(
  request: RelayMessageOf<"connect">,
  context: ServeContext,
  early: EarlyData,
): Promise<void> {
  const label = `conn=${logId(request.conn)} service ${request.service} client ${request.client}`;
  const since = performance.now();
  const { open } = context;
  const refuse = (reason: string) => {
    early.sinks.close(request.conn);
    log.warn(`${label}: ${reason}`);
    context.refuse(request.conn, reason);
  };
  const service = context.services.get(request.service);
  if (!service) return refuse(`agent ${context.agentId} has no service ${request.service}`);
  const window = Math.min(early.window, request.early ?? 0);
  const fromClient = new EarlySink(window);
  early.sinks.open(request.conn, fromClient);
  const dialing = context.dialer.dial(DIAL_TIMEOUT_MS);
  let upstream: Conn;
  try {
    upstream = await dial(service.target, DIAL_TIMEOUT_MS);
  } catch (error) {
    dialing.then(closeQuietly, () => {});
    return refuse(
      `cannot reach ${formatHostPort(service.target)}: ${describeError(error)} ` +
        "(is the service running?)",
    );
  }
  open.track(upstream);
  let data: Conn | undefined;
  try {
    if (service.proxyProtocol) {
      await writeAll(upstream, await proxyHeaderFor(service.proxyProtocol, request));
    }
    fromClient.attach(upstream);
    const toRelay = (bytes: Uint8Array) => early.send(request.conn, bytes);
    const pump = new EarlyPump(upstream, toRelay, window);
    try {
      data = await dialing;
    } catch (error) {
      pump.stop();
      open.release(upstream);
      return refuse(`cannot open a data channel to the relay: ${describeError(error)}`);
    }
    open.track(data);
    const stopped = pump.stop();
    const opened = await openDataChannel(data, context.session, request.conn, stopped.sent);
    await fromClient.until(opened.early, HANDSHAKE_TIMEOUT_MS);
    early.sinks.close(request.conn);
    if (opened.rest.length > 0) await writeAll(upstream, opened.rest);
    open.replace(upstream, stopped.conn);
    const moved = {
      toService: opened.early + opened.rest.length,
      fromService: stopped.sent,
      since,
    };
    spliceService(request, data, stopped.conn, moved, context);
  } catch (error) {
    early.sinks.close(request.conn);
    log.warn(`${label}: ${describeError(error)}`);
    open.release(upstream);
    if (data) open.release(data);
  }
}
