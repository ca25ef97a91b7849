/**
 * The relay's side of agents' data channels as the agent port hands them over (S9a and S11 in
 * docs/flow.md): a `data` frame claims its held client and is joined to it; a `spare` frame is
 * kept for its session's next client, within the limit.
 */

import type { Conn } from "../net.ts";
import type { AgentPortHandlers, HandshakeFailure } from "./agent_port.ts";
import type { Limits } from "./config.ts";
import type { Rendezvous } from "./rendezvous.ts";
import type { Sessions } from "./sessions.ts";
import type { Spares } from "./spares.ts";

/** What data channels are handled with. */
export interface DataChannelParts {
  rendezvous: Rendezvous;
  sessions: Sessions;
  spares: Spares;
  /** The limits in force (they change on reload). */
  limits: () => Limits;
  /** Sends an error frame on an agent-port connection, counts and logs why, and releases it. */
  refuse: (conn: Conn, why: string, reason: HandshakeFailure) => void;
}

/** The agent port's handlers of `data` and `spare` frames. */
export function dataChannelHandlers(
  { rendezvous, sessions, spares, limits, refuse }: DataChannelParts,
): Pick<AgentPortHandlers, "data" | "spare"> {
  return {
    // S11: a data channel claims its held client.
    async data(conn, reader, message, authenticated) {
      const client = rendezvous.claim(message.conn, message.session);
      if (typeof client === "string") {
        return refuse(conn, `data channel with a connection id ${client}`, "connection id");
      }
      authenticated();
      await rendezvous.join(client, conn, reader.takeRest(), message.early);
    },
    // S9a: a spare data channel waits for its session's next client.
    spare(conn, reader, message, authenticated) {
      const session = sessions.byId(message.session);
      if (!session) {
        return refuse(conn, "spare data channel for a session that is not up", "connection id");
      }
      const { maxSparesPerAgent } = limits();
      if (spares.count(session.id) >= maxSparesPerAgent) {
        return refuse(
          conn,
          `agent ${session.agentId} already keeps ${maxSparesPerAgent} spare data channels ` +
            "(limits.max_spares_per_agent)",
          "limit",
        );
      }
      authenticated();
      spares.add(session, conn, reader);
    },
  };
}
