/** The systemd units in contrib/: `systemd-analyze verify` finds nothing to say about them. */

import { assertEquals, assertMatch } from "./assert.ts";
import { tempStateDir } from "./helpers.ts";

/** What `systemd-analyze verify` says of `unit`, its program swapped for one that exists here. */
async function verify(name: string, text: string): Promise<{ code: number; said: string }> {
  const path = `${tempStateDir()}/${name}`;
  const program = new RegExp(`/usr/local/bin/${name.replace(".service", "")}`, "g");
  await Deno.writeTextFile(path, text.replace(program, "/bin/true"));
  const output = await new Deno.Command("systemd-analyze", {
    args: ["verify", path],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, said: (decode(output.stdout) + decode(output.stderr)).trim() };
}

for (const program of ["relay", "agent"]) {
  Deno.test(`contrib/porthole-${program}.service passes systemd-analyze verify`, async () => {
    const name = `porthole-${program}.service`;
    const unit = await Deno.readTextFile(new URL(`../contrib/${name}`, import.meta.url));
    assertMatch(unit, new RegExp(`^ExecStart=/usr/local/bin/porthole-${program} `, "m"));
    assertMatch(unit, /^DynamicUser=yes$/m);
    assertMatch(unit, /^Restart=on-failure$/m);
    assertMatch(unit, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
    assertEquals(await verify(name, unit), { code: 0, said: "" });
    // The check can fail: a misspelt hardening option is reported.
    const typo = await verify(name, unit.replace("ProtectHome=yes", "ProtectHom=yes"));
    assertMatch(typo.said, /Unknown key 'ProtectHom'/);
  });
}
