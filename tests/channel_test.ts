/** Control-channel heartbeats, in-process: a silent peer is noticed within three intervals. */

import { assert, assertEquals, assertRejects } from "./assert.ts";
import { socketPair } from "./helpers.ts";
import { ControlChannel } from "../lib/channel.ts";
import { HEARTBEAT_MISSES } from "../lib/protocol.ts";
import { decodeAgentMessage, decodeRelayMessage } from "../lib/message_codec.ts";

const INTERVAL_MS = 100;

Deno.test("heartbeat: two live ends keep each other up for many intervals", async () => {
  const [agentSide, relaySide] = await socketPair();
  const agent = new ControlChannel(agentSide, decodeRelayMessage);
  const relay = new ControlChannel(relaySide, decodeAgentMessage);
  let silences = 0;
  relay.startHeartbeat(INTERVAL_MS, () => silences++);
  agent.startHeartbeat(INTERVAL_MS, () => silences++);
  const reading = [relay.receive(), agent.receive()];
  await new Promise((resolve) => setTimeout(resolve, 10 * INTERVAL_MS));
  assertEquals(silences, 0, "a live peer was declared silent");
  agent.close();
  relay.close();
  await Promise.allSettled(reading);
});

Deno.test("heartbeat: a peer that stops answering (socket open, nothing sent) is dropped after three intervals", async () => {
  const [mute, relaySide] = await socketPair(); // `mute` never reads nor writes: a black hole
  const relay = new ControlChannel(relaySide, decodeAgentMessage);
  const started = performance.now();
  let silentFor = 0;
  relay.startHeartbeat(INTERVAL_MS, (ms) => silentFor = ms);
  await assertRejects(relay.receive(), /nothing heard for \d+ ms \(3 heartbeat intervals\)/);
  const took = performance.now() - started;
  assert(silentFor >= HEARTBEAT_MISSES * INTERVAL_MS, `declared silent after ${silentFor} ms`);
  assert(took <= HEARTBEAT_MISSES * INTERVAL_MS + 50, `noticed after ${took} ms`);
  mute.close();
});
