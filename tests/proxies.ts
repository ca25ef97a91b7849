/**
 * Real proxies on the proxy host of a locked-down network (tests/netns.ts), from Debian's packages
 * (`make test` installs them): squid (HTTP CONNECT, with Basic authentication), microsocks
 * (SOCKS5, with a user name and password) and nginx as a reverse proxy that passes WebSocket
 * upgrades and nothing else. Each can be killed with SIGKILL and started again on its port.
 */

import { type LockedNetwork, PROXY_PORTS, run } from "./netns.ts";

/** The one user every test proxy knows. */
export const PROXY_USER = { name: "alice", password: "wonder land" };

/** A proxy process in the proxy host's namespace. */
export interface ProxyDaemon extends AsyncDisposable {
  /** Its port on the proxy host. */
  port: number;
  /** Ends it at once, as a crash would (SIGKILL). */
  kill(): Promise<void>;
  /** Starts it again, on the same port. */
  restart(): Promise<void>;
}

/** Starts `command` on the proxy host, waiting until `port` accepts connections there. */
async function startOnProxyHost(
  net: LockedNetwork,
  command: string[],
  port: number,
  dir: string,
): Promise<ProxyDaemon> {
  let child: Deno.ChildProcess | undefined;
  const start = async () => {
    child = new Deno.Command("ip", {
      args: ["netns", "exec", net.proxyHost, ...command],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const deadline = Date.now() + 15_000;
    while (true) {
      const probe = net.inNamespace(net.proxyHost, ["nc", "-z", net.proxyAddress, String(port)]);
      if (await run(probe).then(() => true, () => false)) return;
      if (Date.now() > deadline) throw new Error(`${command[0]} does not listen on ${port}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  const kill = async () => {
    try {
      child?.kill("SIGKILL");
    } catch {
      // already gone
    }
    await child?.status;
  };
  const stop = async () => {
    await kill();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    await start();
  } catch (error) {
    await stop();
    throw error;
  }
  return { port, kill, restart: start, [Symbol.asyncDispose]: stop };
}

/** A directory the proxies (which drop root for their own users) may read. */
async function proxyDir(name: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: `porthole-${name}-` });
  await Deno.chmod(dir, 0o755);
  return dir;
}

/**
 * squid on the proxy host's port 3128, asking for {@link PROXY_USER}; CONNECT only to
 * `connectPorts` (e.g. "443"), or to none at all when it is empty.
 */
export async function startSquid(
  net: LockedNetwork,
  connectPorts = "1-65535",
): Promise<ProxyDaemon> {
  const dir = await proxyDir("squid");
  const hash = (await run(["openssl", "passwd", "-apr1", PROXY_USER.password])).trim();
  await Deno.writeTextFile(`${dir}/passwd`, `${PROXY_USER.name}:${hash}\n`, { mode: 0o644 });
  const connect = connectPorts
    ? `acl tunnel_ports port ${connectPorts}\nhttp_access deny CONNECT !tunnel_ports`
    : "http_access deny CONNECT";
  await Deno.writeTextFile(
    `${dir}/squid.conf`,
    `http_port ${net.proxyAddress}:${PROXY_PORTS.squid}
pid_filename ${dir}/squid.pid
cache_log ${dir}/cache.log
access_log none
cache deny all
coredump_dir ${dir}
pinger_enable off
shutdown_lifetime 0 seconds
auth_param basic program /usr/lib/squid/basic_ncsa_auth ${dir}/passwd
auth_param basic realm porthole-test
acl users proxy_auth REQUIRED
${connect}
http_access allow users
http_access deny all
`,
  );
  return await startOnProxyHost(
    net,
    ["squid", "-N", "-f", `${dir}/squid.conf`],
    PROXY_PORTS.squid,
    dir,
  );
}

/** microsocks on the proxy host's port 1080, asking for {@link PROXY_USER}. */
export async function startMicrosocks(net: LockedNetwork): Promise<ProxyDaemon> {
  const dir = await proxyDir("microsocks");
  const { name, password } = PROXY_USER;
  const command = ["microsocks", "-i", net.proxyAddress, "-p", String(PROXY_PORTS.socks)];
  return await startOnProxyHost(
    net,
    [...command, "-u", name, "-P", password],
    PROXY_PORTS.socks,
    dir,
  );
}

/**
 * nginx on the proxy host's port 443, terminating TLS with `certDir`'s relay.pem and passing
 * WebSocket upgrades at `/porthole` to `upstream` (the relay's agent port, over TLS).
 */
export async function startReverseProxy(
  net: LockedNetwork,
  certDir: string,
  upstream: string,
): Promise<ProxyDaemon> {
  const dir = await proxyDir("nginx");
  const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    .map((kind) => `${kind}_temp_path ${dir}/${kind};`).join("\n  ");
  await Deno.writeTextFile(
    `${dir}/nginx.conf`,
    `master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  ${temp}
  server {
    listen ${net.proxyAddress}:${PROXY_PORTS.https} ssl;
    ssl_certificate ${certDir}/relay.pem;
    ssl_certificate_key ${certDir}/relay.key;
    location = /porthole {
      proxy_pass https://${upstream};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout 1h;
    }
    location / { return 404; }
  }
}
`,
  );
  const command = ["nginx", "-p", dir, "-c", `${dir}/nginx.conf`, "-g", "daemon off;"];
  return await startOnProxyHost(net, command, PROXY_PORTS.https, dir);
}
