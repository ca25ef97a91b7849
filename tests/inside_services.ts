/**
 * The services behind the agent in tests/locked_down_test.ts, run inside the locked-down
 * network's namespace: `deno run -A tests/inside_services.ts PORT` serves, on 127.0.0.1,
 *
 * - PORT: an echo that answers until the client half-closes, then closes;
 * - PORT+1: a service that speaks first and half-closes at once, then reads what the client
 *   sends until it ends, and prints `received N bytes` on stdout;
 * - PORT+2: HTTP, answering every request with `web inside`.
 *
 * It prints `ready` once all three listen.
 */

const port = Number(Deno.args[0]);

async function serve(at: number, handle: (conn: Deno.TcpConn) => Promise<void>) {
  for await (const conn of Deno.listen({ hostname: "127.0.0.1", port: at })) {
    handle(conn).catch(() => {}).finally(() => {
      try {
        conn.close();
      } catch {
        // closed by the peer's reset
      }
    });
  }
}

serve(port, async (conn) => {
  const buffer = new Uint8Array(64 * 1024);
  for (let count; (count = await conn.read(buffer)) !== null;) {
    for (let done = 0; done < count;) done += await conn.write(buffer.subarray(done, count));
  }
  await conn.closeWrite();
});

serve(port + 1, async (conn) => {
  await conn.write(new TextEncoder().encode("first words\n"));
  await conn.closeWrite();
  let received = 0;
  const buffer = new Uint8Array(64 * 1024);
  for (let count; (count = await conn.read(buffer)) !== null;) received += count;
  console.log(`received ${received} bytes`);
});

Deno.serve(
  { hostname: "127.0.0.1", port: port + 2, onListen: () => console.log("ready") },
  () => new Response("web inside\n"),
);
