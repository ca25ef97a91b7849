/**
 * A locked-down network for tests, built for real with network namespaces, veth pairs and nft
 * (Debian's iproute2 and nftables, as root):
 *
 * ```
 *  inside (agent, service)      proxy host (squid, microsocks, nginx)      outside (relay)      test
 *  10.N.1.2  ───────────────────  10.N.1.1 │ 10.N.2.1  ───────────────────  10.N.2.2 │ 10.N.3.2 ── 10.N.3.1
 * ```
 *
 * The proxy host forwards nothing: its firewall (stateful, nft) drops every packet from inside
 * that is not for one of its own ports, so the inside's only way out is a proxy on it. The test
 * process itself is a client on the internet, beside the relay. Everything is removed on dispose,
 * even after a failure.
 */

import { assert } from "./assert.ts";

/** The proxy host's ports that the inside may reach. */
export const PROXY_PORTS = { squid: 3128, socks: 1080, http: 80, https: 443 };

/** The network, and how to run things in it. */
export interface LockedNetwork extends AsyncDisposable {
  /** Namespace names. */
  inside: string;
  proxyHost: string;
  outside: string;
  /** The proxy host's address as the inside sees it. */
  proxyAddress: string;
  /** The relay's address as the proxy host sees it. */
  relayAddress: string;
  /** The relay's address as the test (a client on the internet) sees it. */
  publicAddress: string;
  /** The command line that runs `command` in namespace `ns`. */
  inNamespace(ns: string, command: string[]): string[];
  /** Opens the firewall: the proxy host routes the inside out directly, with NAT, from now on. */
  openDirectPath(): Promise<void>;
}

/** Runs a command to its end; throws with its output if it fails. */
export async function run(command: string[]): Promise<string> {
  const result = await new Deno.Command(command[0], {
    args: command.slice(1),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const output = new TextDecoder().decode(result.stdout) + new TextDecoder().decode(result.stderr);
  if (!result.success) throw new Error(`${command.join(" ")} failed: ${output}`);
  return output;
}

/** Builds the network; fails (rather than passes) where namespaces cannot be made. */
export async function lockedDownNetwork(): Promise<LockedNetwork> {
  assert(
    Deno.uid() === 0,
    "these tests build network namespaces and must run as root (CI does); they cannot pass here",
  );
  const id = Math.random().toString(36).slice(2, 7);
  const octet = 64 + Math.floor(Math.random() * 180);
  const net = (subnet: number, host: number) => `10.${octet}.${subnet}.${host}`;
  const [inside, proxyHost, outside] = ["i", "p", "o"].map((role) => `ph${id}${role}`);
  const created: string[] = [];
  const remove = async () => {
    for (const ns of created.reverse()) await run(["ip", "netns", "del", ns]).catch(() => {});
    await run(["ip", "link", "del", `ph${id}t`]).catch(() => {}); // gone with its peer, usually
  };
  const ip = (ns: string | undefined, ...args: string[]) =>
    run(["ip", ...(ns ? ["-n", ns] : []), ...args]);
  /** A veth pair from `a` (undefined: the test's own namespace) to `b`, with addresses. */
  const link = async (
    a: string | undefined,
    aName: string,
    aAddress: string,
    b: string,
    bName: string,
    bAddress: string,
  ) => {
    await ip(undefined, "link", "add", aName, "type", "veth", "peer", "name", bName);
    if (a) await ip(undefined, "link", "set", aName, "netns", a);
    await ip(undefined, "link", "set", bName, "netns", b);
    await ip(a, "addr", "add", `${aAddress}/24`, "dev", aName);
    await ip(b, "addr", "add", `${bAddress}/24`, "dev", bName);
    await ip(a, "link", "set", aName, "up");
    await ip(b, "link", "set", bName, "up");
  };
  try {
    for (const ns of [inside, proxyHost, outside]) {
      await run(["ip", "netns", "add", ns]);
      created.push(ns);
      await ip(ns, "link", "set", "lo", "up");
    }
    await link(inside, `ph${id}a`, net(1, 2), proxyHost, `ph${id}b`, net(1, 1));
    await link(proxyHost, `ph${id}c`, net(2, 1), outside, `ph${id}d`, net(2, 2));
    await link(undefined, `ph${id}t`, net(3, 1), outside, `ph${id}e`, net(3, 2));
    await ip(inside, "route", "add", "default", "via", net(1, 1));
    const ports = Object.values(PROXY_PORTS).join(", ");
    const rules = await Deno.makeTempFile({ suffix: ".nft" });
    await Deno.writeTextFile(
      rules,
      `table inet firewall {
  chain input {
    type filter hook input priority 0; policy drop;
    iifname "lo" accept
    ct state established,related accept
    iifname "ph${id}b" tcp dport { ${ports} } accept
  }
  chain forward {
    type filter hook forward priority 0; policy drop;
  }
}
`,
    );
    await run(["ip", "netns", "exec", proxyHost, "nft", "-f", rules]).finally(() =>
      Deno.remove(rules)
    );
  } catch (error) {
    await remove();
    throw error;
  }
  return {
    inside,
    proxyHost,
    outside,
    proxyAddress: net(1, 1),
    relayAddress: net(2, 2),
    publicAddress: net(3, 2),
    inNamespace: (ns, command) => ["ip", "netns", "exec", ns, ...command],
    async openDirectPath() {
      const exec = (...command: string[]) => run(["ip", "netns", "exec", proxyHost, ...command]);
      await exec("sysctl", "-q", "-w", "net.ipv4.ip_forward=1");
      await exec("nft", "add", "rule", "inet", "firewall", "forward", "accept");
      await exec("nft", "add", "table", "ip", "nat");
      await exec(
        "nft",
        "add chain ip nat postrouting { type nat hook postrouting priority 100 ; }",
      );
      await exec(
        "nft",
        "add",
        "rule",
        "ip",
        "nat",
        "postrouting",
        "oifname",
        `ph${id}c`,
        "masquerade",
      );
    },
    [Symbol.asyncDispose]: remove,
  };
}
