/**
 * Agent sessions on the relay (S1–S4 and S7–S8 in docs/flow.md): an agent's control channel from
 * its proof to its end, the messages it sends (its services' are handled by
 * lib/relay/session_services.ts), and what a configuration reload changes for it.
 */

import { randomToken, sameBytes } from "../auth.ts";
import { ControlChannel } from "../channel.ts";
import type { OpenConnections } from "../drain.ts";
import { challengeAgent } from "../handshake.ts";
import { createLogger } from "../log.ts";
import { type Conn, deadline, describeError } from "../net.ts";
import { formatAddr } from "../address.ts";
import {
  type AgentMessage,
  type AgentMessageOf,
  EARLY_WINDOW_BYTES,
  ProtocolError,
} from "../protocol.ts";
import { decodeAgentMessage } from "../message_codec.ts";
import { type FrameReader } from "../frames.ts";
import type { RelayConfig } from "./config.ts";
import type { PolicyContext } from "./policy.ts";
import { SessionServices } from "./session_services.ts";
import type { Publication } from "./publication.ts";
import type { Rendezvous } from "./rendezvous.ts";
import type { Spares } from "./spares.ts";
import type { HandshakeFailure } from "./agent_port.ts";

/** An authenticated agent's session. */
export interface AgentSession {
  /** The unguessable session id that binds this agent's data channels. */
  id: string;
  agentId: string;
  /** The HMAC key the agent authenticated with; a reload that changes it ends the session. */
  key: Uint8Array;
  channel: ControlChannel<AgentMessage>;
  services: Set<string>;
  /** The host names each of its services claimed, checked again on reload. */
  hosts: Map<string, readonly string[]>;
  /** Bytes per connection and direction it may send early (lib/relay/early.ts); 0 for none. */
  earlyWindow: number;
  /** Where it connected from, and when (`Date.now()`), for the admin API. */
  address: string;
  since: number;
  /** Each of its services' kind and public addresses, for the admin API. */
  published: Map<string, { kind: string; addresses: readonly string[] }>;
}

/** What sessions are run with. */
export interface SessionsOptions {
  /** The configuration in force, and the relay's pins and range (changes on reload). */
  policy: () => PolicyContext;
  /** The key of agents not listed in the configuration (the shared secret's). */
  sharedKey?: Uint8Array;
  heartbeatMs: number;
  /** Where services come online and go offline (the registry and the fronts). */
  publication: Publication<AgentSession>;
  rendezvous: Rendezvous;
  /** The spare data channels of each session, released when it ends. */
  spares: Spares;
  open: OpenConnections;
  /** Sends an error frame on an agent-port connection, logs why, and releases it. */
  refuse: (conn: Conn, why: string, reason: HandshakeFailure) => void;
}

const log = createLogger("relay");

/** The key `agentId` may authenticate with under `config`: its own, the shared one, or none. */
function configuredKey(
  config: RelayConfig,
  agentId: string,
  sharedKey: Uint8Array | undefined,
): Uint8Array | undefined {
  return config.agents ? config.agents.get(agentId)?.key : sharedKey;
}

/** The sessions of the agents connected now, by agent id. */
export class Sessions {
  readonly #byAgent = new Map<string, AgentSession>();
  readonly #byId = new Map<string, AgentSession>();
  readonly #options: SessionsOptions;
  readonly #services: SessionServices;

  constructor(options: SessionsOptions) {
    this.#options = options;
    this.#services = new SessionServices(options.policy, options.publication);
  }

  /** Agents connected now. */
  get size(): number {
    return this.#byAgent.size;
  }

  /** The session with this id, if it is still up. */
  byId(id: string): AgentSession | undefined {
    return this.#byId.get(id);
  }

  /** The sessions up now. */
  all(): AgentSession[] {
    return [...this.#byAgent.values()];
  }

  /** Services registered by all sessions. */
  get serviceCount(): number {
    return [...this.#byAgent.values()].reduce((sum, session) => sum + session.services.size, 0);
  }

  /**
   * S1–S2: proves the agent that sent `hello`, then serves its control channel (S3–S4, S8)
   * until it ends. `authenticated` is called once the agent has proven its secret.
   */
  async run(
    conn: Conn,
    reader: FrameReader,
    hello: AgentMessageOf<"hello">,
    authenticated: () => void,
  ): Promise<void> {
    const { refuse, policy, heartbeatMs } = this.#options;
    const channel = new ControlChannel(conn, decodeAgentMessage, reader);
    // An unknown agent gets a random key, so it fails exactly like a wrong secret.
    const key = configuredKey(policy().config, hello.agent, this.#options.sharedKey) ??
      crypto.getRandomValues(new Uint8Array(32));
    const proof = await deadline(
      challengeAgent(channel, hello, key),
      policy().config.limits.handshakeTimeoutMs,
      conn,
      "authentication",
    );
    if (proof === "closed") return this.#options.open.release(conn);
    if (proof !== "proven") return refuse(conn, proof.refused, "authentication");
    authenticated();
    const session: AgentSession = {
      id: randomToken(),
      agentId: hello.agent,
      key,
      channel,
      services: new Set(),
      hosts: new Map(),
      earlyWindow: Math.min(hello.early ?? 0, EARLY_WINDOW_BYTES),
      address: formatAddr(conn.remoteAddr),
      since: Date.now(),
      published: new Map(),
    };
    const stale = this.#byAgent.get(hello.agent);
    if (stale) {
      log.warn(`agent ${hello.agent} connected again; closing its previous session`);
      this.end(stale, "replaced by a new session of the same agent");
    }
    this.#byAgent.set(hello.agent, session);
    this.#byId.set(session.id, session);
    const spares = policy().config.limits.maxSparesPerAgent;
    channel.send({
      type: "welcome",
      session: session.id,
      heartbeatMs,
      ...(spares > 0 ? { spares } : {}),
      ...(session.earlyWindow > 0 ? { early: session.earlyWindow } : {}),
    });
    channel.startHeartbeat(heartbeatMs, (silentMs) =>
      log.warn(
        `agent ${hello.agent} silent for ${Math.round(silentMs)} ms; dropping its session`,
      ));
    log.info(`agent ${hello.agent} connected from ${formatAddr(conn.remoteAddr)}`);
    try {
      for (let message; (message = await channel.receive()) !== null;) {
        this.#handle(session, message);
      }
      log.info(`agent ${hello.agent} disconnected`);
    } catch (error) {
      const why = describeError(error);
      if (error instanceof ProtocolError) channel.send({ type: "error", message: why });
      log.warn(`agent ${hello.agent}: control channel ended: ${why}`);
    } finally {
      this.end(session);
    }
  }

  /** Ends a session: its services go offline and the clients it left waiting are closed. */
  end(session: AgentSession, reason?: string): void {
    session.channel.close(reason);
    this.#options.open.forget(session.channel.conn);
    if (this.#byAgent.get(session.agentId) === session) this.#byAgent.delete(session.agentId);
    this.#byId.delete(session.id);
    this.#options.spares.dropSession(session.id);
    this.#services.endAll(session);
    this.#options.rendezvous.dropSession(session.id, session.agentId);
  }

  /** Ends every session (the relay is stopping). */
  endAll(reason: string): void {
    for (const session of [...this.#byAgent.values()]) this.end(session, reason);
  }

  /**
   * Applies a new configuration: an agent no longer allowed with its key is disconnected, a
   * service an agent may no longer serve is withdrawn, and the rest stays up.
   */
  reload(): void {
    const context = this.#options.policy();
    for (const session of [...this.#byAgent.values()]) {
      const key = configuredKey(context.config, session.agentId, this.#options.sharedKey);
      if (!key || !sameBytes(key, session.key)) {
        log.warn(
          `agent ${session.agentId} is no longer allowed with its secret by the configuration; ` +
            "disconnecting it",
        );
        this.end(session, "no longer allowed by the relay's configuration");
        continue;
      }
      this.#services.recheck(session);
    }
  }

  #handle(session: AgentSession, message: AgentMessage): void {
    switch (message.type) {
      case "register":
        return this.#services.register(session, message);
      case "unregister":
        return this.#services.withdraw(session, message.service);
      case "refuse":
        return this.#options.rendezvous.refused(message.conn, session.id, message.reason);
      case "early":
        return this.#options.rendezvous.receivedEarly(session.id, message.conn, message.bytes);
      case "health":
        return this.#services.health(session, message);
      default:
        throw new ProtocolError(`unexpected "${message.type}" on a control channel`);
    }
  }
}
