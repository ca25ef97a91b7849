/**
 * A real nginx for tests, from Debian's package (`make test` installs it): its own prefix in a
 * temporary directory, in the foreground, on a port chosen at run time.
 */

import { type Daemon, freePort, startDaemon } from "./helpers.ts";

/** A server block for `startNginx` that answers every request with `web` and a newline. */
export const SAYS_WEB = 'listen 127.0.0.1:PORT; location / { return 200 "web\\n"; }';

/** A running nginx: its port, and how to stop it. */
export interface Nginx extends Daemon {
  port: number;
}

/**
 * Starts nginx with `server` (the inside of one `server { }` block; `PORT` in it is replaced by
 * the port chosen); resolves once it accepts connections.
 */
export async function startNginx(server: string): Promise<Nginx> {
  const dir = await Deno.makeTempDir({ prefix: "porthole-nginx-" });
  const port = freePort();
  await Deno.writeTextFile(
    `${dir}/nginx.conf`,
    `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 256; }
http {
  access_log off;
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
  const nginx = await startDaemon(
    "nginx",
    ["-p", dir, "-c", `${dir}/nginx.conf`, "-g", "daemon off;"],
    port,
    dir,
  );
  return { port, ...nginx };
}
