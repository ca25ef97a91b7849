/**
 * The status page (lib/admin/status_page.ts) in a real headless browser (Debian's chromium): it
 * loads with no console error and shows the agent, the service and the bytes of a transfer the
 * test made; a screenshot is written for a person to look at.
 */

import { assert, assertEquals, assertMatch } from "./assert.ts";
import {
  adminOf,
  echo,
  randomBytes,
  request,
  startAgentProcess,
  startRelayProcess,
  startServer,
  tempStateDir,
} from "./helpers.ts";

/** Runs headless chromium on `url` with `args`; returns its stdout and stderr. */
async function chromium(url: string, args: string[]): Promise<{ out: string; err: string }> {
  const output = await new Deno.Command("chromium", {
    args: [
      ...["--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0"],
      `--user-data-dir=${tempStateDir()}`,
      "--virtual-time-budget=3000",
      ...args,
      url,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  assertEquals(output.code, 0, decode(output.stderr));
  return { out: decode(output.stdout), err: decode(output.stderr) };
}

Deno.test("status page: in headless chromium, the agent, its service and a transfer's bytes, no console error", async () => {
  await using service = startServer(echo);
  await using relay = await startRelayProcess();
  await using agent = await startAgentProcess(relay, { echo: service.port }, ["--id", "paged"]);
  const admin = await adminOf(relay);
  const payload = randomBytes(100_000);
  assertEquals((await request(agent.publicPort.echo, payload)).length, payload.length);

  const page = await chromium(`http://${admin}/`, ["--dump-dom"]);
  const consoleLines = page.err.split("\n").filter((line) => line.includes(":CONSOLE"));
  assertEquals(consoleLines, [], "the page wrote nothing to the console");
  assertMatch(page.out, /<h1>porthole relay<\/h1>/);
  assertMatch(page.out, /<table id="agents">.*<td>paged<\/td>/s);
  assertMatch(page.out, /<table id="services">.*<td>echo<\/td>/s);
  assertMatch(page.out, /<td>id paged, healthy true, paused false, connections 1, share 1<\/td>/);
  assertMatch(page.out, /echo: \d+ B\/s now, 200000 bytes in all/);

  const screenshot = `${
    Deno.env.get("PORTHOLE_SCREENSHOT_DIR") ?? "/tmp"
  }/porthole-status-page.png`;
  await chromium(`http://${admin}/`, [`--screenshot=${screenshot}`, "--window-size=1100,800"]);
  const png = await Deno.readFile(screenshot);
  assert(png.length > 1_000, `a screenshot of ${png.length} bytes`);
  assertEquals([...png.subarray(1, 4)], [0x50, 0x4e, 0x47], "a PNG");
  console.log(`status page screenshot: ${screenshot}`);
});
