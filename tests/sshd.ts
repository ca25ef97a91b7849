/**
 * A real OpenSSH server for tests, from Debian's package (`make test` installs it): a fresh host
 * key and client key in a temporary directory, on a port chosen at run time, in the foreground.
 */

import { type Daemon, freePort, startDaemon } from "./helpers.ts";

/** A running sshd: its port, the client key it accepts, and the `ssh` arguments that use it. */
export interface Sshd extends Daemon {
  port: number;
  /** `ssh` options for a non-interactive login with the test's key. */
  clientArgs: string[];
}

async function run(command: string, args: string[]): Promise<void> {
  const { success, stderr } = await new Deno.Command(command, {
    args,
    stdout: "null",
    stderr: "piped",
  })
    .output();
  if (!success) throw new Error(`${command} failed: ${new TextDecoder().decode(stderr)}`);
}

/** Starts sshd on 127.0.0.1; resolves once it accepts connections. */
export async function startSshd(): Promise<Sshd> {
  const dir = await Deno.makeTempDir({ prefix: "porthole-sshd-" });
  const port = freePort();
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", `${dir}/host_key`]);
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", `${dir}/client_key`]);
  await Deno.copyFile(`${dir}/client_key.pub`, `${dir}/authorized_keys`);
  await Deno.writeTextFile(
    `${dir}/sshd_config`,
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${dir}/host_key`,
      `AuthorizedKeysFile ${dir}/authorized_keys`,
      `PidFile ${dir}/sshd.pid`,
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "StrictModes no",
      "PermitRootLogin prohibit-password",
    ].join("\n") + "\n",
  );
  await Deno.mkdir("/run/sshd", { recursive: true }); // sshd's privilege separation directory
  const sshd = await startDaemon(
    "/usr/sbin/sshd",
    ["-D", "-e", "-f", `${dir}/sshd_config`],
    port,
    dir,
  );
  const clientArgs = [
    "-i",
    `${dir}/client_key`,
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
  ];
  return { port, clientArgs, ...sshd };
}
