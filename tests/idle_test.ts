/** End to end: --idle-timeout closes connections no byte has crossed for a while, and only those. */

import { assert, assertEquals } from "./assert.ts";
import {
  connect,
  echo,
  readAll,
  readExactly,
  startAgentProcess,
  startRelayProcess,
  startServer,
} from "./helpers.ts";
import { writeAll } from "../lib/net.ts";

for (const side of ["relay", "agent"] as const) {
  Deno.test(`--idle-timeout on the ${side}: a quiet connection is closed, a chatty one is not`, async () => {
    await using server = startServer(echo);
    const flag = ["--idle-timeout", "0.4"];
    await using relay = await startRelayProcess(side === "relay" ? flag : []);
    await using agent = await startAgentProcess(
      relay,
      { echo: server.port },
      side === "agent" ? flag : [],
    );
    const port = agent.publicPort.echo;
    const chatty = await connect(port);
    const quiet = await connect(port);
    await writeAll(quiet, new Uint8Array([1]));
    await readExactly(quiet, 1);
    const quietSince = performance.now();
    const closed = readAll(quiet).then(() => performance.now() - quietSince);
    for (let i = 0; i < 8; i++) { // 800 ms of a byte every 100 ms
      await writeAll(chatty, new Uint8Array([i]));
      assertEquals((await readExactly(chatty, 1))[0], i);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const quietFor = await closed;
    assert(quietFor >= 350 && quietFor < 2_000, `closed after ${quietFor} ms of silence`);
    const proc = side === "relay" ? relay : agent;
    await proc.waitFor(/connection closed \(idle for 400 ms\): conn=\w+ service=echo/);
    // The chatty one is still open and works.
    await writeAll(chatty, new Uint8Array([42]));
    assertEquals((await readExactly(chatty, 1))[0], 42);
    chatty.close();
    quiet.close();
  });
}
