/**
 * `make demo`: a relay, an agent and a small HTTP service, all on loopback. Prints the public
 * URL, fetches it once through the tunnel, and keeps everything running until Ctrl-C.
 */

import { denoRunArgs } from "../lib/launch.ts";
import { randomToken } from "../lib/auth.ts";

const RELAY_PORT = 7835;
/** Ctrl-C should not wait long for connections a browser keeps open. */
const QUICK_EXIT = ["--shutdown-timeout", "1"];

const service = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen: () => {} },
  (request) =>
    new Response(`Hello through porthole! You asked for ${new URL(request.url).pathname}\n`),
);
const env = { PORTHOLE_SECRET: randomToken() + randomToken() };

/** Starts relay.ts or agent.ts; its log lines go to this terminal and to `onLine`. */
function start(script: "relay" | "agent", args: string[], onLine: (line: string) => void) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [...denoRunArgs(script), ...args],
    env,
    stdin: "null",
    stderr: "piped",
  }).spawn();
  (async () => {
    let partial = "";
    for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) {
      const lines = (partial + text).split("\n");
      partial = lines.pop()!;
      for (const line of lines) {
        console.error(line);
        onLine(line);
      }
    }
  })();
  return child;
}

const children: Deno.ChildProcess[] = [];
const reachable = Promise.withResolvers<string>();
const relayUp = Promise.withResolvers<void>();
const stateDir = await Deno.makeTempDir({ prefix: "porthole-demo-" });
let fingerprint = "";

/** Stops relay and agent, the service, removes the state directory, and exits with `code`. */
async function stop(code: number): Promise<never> {
  for (const child of children) {
    try {
      child.kill("SIGTERM");
    } catch {
      // already exited
    }
  }
  await Promise.all(children.map((child) => child.status));
  await service.shutdown();
  await Deno.remove(stateDir, { recursive: true });
  Deno.exit(code);
}
for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, () => stop(0));

/** Resolves as `ready` does; if `child` exits first, says so and stops everything. */
async function whenUp<T>(ready: Promise<T>, child: Deno.ChildProcess, name: string): Promise<T> {
  const exited = child.status.then(({ code }) => code);
  const first = await Promise.race([ready.then((value) => ({ value })), exited]);
  if (typeof first === "object") return first.value;
  console.error(
    `\nThe ${name} exited (code ${first}) before the tunnel was up: see its log above.`,
  );
  return await stop(1);
}

children.push(
  start("relay", [
    "--listen",
    `127.0.0.1:${RELAY_PORT}`,
    "--state-dir",
    stateDir,
    ...QUICK_EXIT,
  ], (line) => {
    fingerprint ||= line.match(/fingerprint \(SHA-256\): (\S+)/)?.[1] ?? "";
    if (line.includes("listening for agents")) relayUp.resolve();
  }),
);
await whenUp(relayUp.promise, children[0], "relay");
children.push(start("agent", [
  "--relay",
  `127.0.0.1:${RELAY_PORT}`,
  "--fingerprint",
  fingerprint,
  ...QUICK_EXIT,
  "--id",
  "demo",
  "--service",
  `web=127.0.0.1:${service.addr.port}`,
], (line) => {
  const match = line.match(/service web .* is reachable at (\S+)$/);
  if (match) reachable.resolve(match[1]);
}));

const url = `http://${await whenUp(reachable.promise, children[1], "agent")}/demo`;
const client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 }); // no connection left open
const answer = await (await fetch(url, { client })).text();
client.close();
console.log(`\nThe local service is public at ${url}`);
console.log(`Fetched it once through the tunnel: ${answer.trim()}`);
console.log("Try: curl " + url + "\nPress Ctrl-C to stop.\n");
