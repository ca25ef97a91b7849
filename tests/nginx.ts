/**
 * A real nginx for tests, from Debian's package (`make test` installs it): its own prefix in a
 * temporary directory, in the foreground, on a port chosen at run time.
 */

import { freePort, listening } from "./helpers.ts";

/** A server block for `startNginx` that answers every request with `web` and a newline. */
export const SAYS_WEB = 'listen 127.0.0.1:PORT; location / { return 200 "web\\n"; }';

/** A running nginx: its port, its access log, and how to stop it. */
export interface Nginx extends AsyncDisposable {
  port: number;
  /** The lines of its access log so far. */
  accessLog(): string[];
  stop(): Promise<void>;
}

/**
 * Starts nginx with `server` (the inside of one `server { }` block; `PORT` in it is replaced by
 * the port chosen) and `logFormat` for its access log; resolves once it accepts connections.
 */
export async function startNginx(
  server: string,
  logFormat = "$remote_addr $status",
): Promise<Nginx> {
  const dir = await Deno.makeTempDir({ prefix: "porthole-nginx-" });
  const port = freePort();
  await Deno.writeTextFile(
    `${dir}/nginx.conf`,
    `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 256; }
http {
  log_format test '${logFormat}';
  access_log ${dir}/access.log test;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    ${server.replaceAll("PORT", String(port))}
  }
}
`,
  );
  const child = new Deno.Command("nginx", {
    args: ["-p", dir, "-c", `${dir}/nginx.conf`, "-g", "daemon off;"],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
    await child.output();
    await Deno.remove(dir, { recursive: true });
  };
  try {
    await listening(port, "nginx");
  } catch (error) {
    await stop();
    throw error;
  }
  const accessLog = () => {
    try {
      return Deno.readTextFileSync(`${dir}/access.log`).split("\n").filter(Boolean);
    } catch {
      return [];
    }
  };
  return { port, accessLog, stop, [Symbol.asyncDispose]: stop };
}
