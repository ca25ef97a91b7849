/**
 * The services the benchmark tunnels to, run as a process of their own so that serving does not
 * compete with the load generator's event loop. On loopback, at ports chosen by the system; it
 * prints `echo PORT`, `sink PORT` and `source PORT` on stdout once each listens, and serves until
 * killed.
 *
 * - echo: sends every byte back, and half-closes when the client does;
 * - sink: reads until the client half-closes, then answers with the byte count in decimal;
 * - source: reads a byte count in decimal and a newline, sends that many bytes, and half-closes.
 */

/** Buffer per echo connection: small, since the concurrency probe holds thousands of them. */
const ECHO_BUFFER_BYTES = 4 * 1024;
/** Buffer of the sink, which reads one bulk stream at a time. */
const SINK_BUFFER_BYTES = 256 * 1024;
/** Bytes the source writes at a time (random bytes: getRandomValues fills at most 64 KiB). */
const SOURCE_CHUNK_BYTES = 64 * 1024;
/** Longest request line the source reads ("1073741824\n" is 11 bytes). */
const SOURCE_REQUEST_BYTES = 32;

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let done = 0; done < data.length;) done += await conn.write(data.subarray(done));
}

async function echo(conn: Deno.TcpConn): Promise<void> {
  const buffer = new Uint8Array(ECHO_BUFFER_BYTES);
  for (let n; (n = await conn.read(buffer)) !== null;) await writeAll(conn, buffer.subarray(0, n));
  await conn.closeWrite();
}

async function sink(conn: Deno.TcpConn): Promise<void> {
  const buffer = new Uint8Array(SINK_BUFFER_BYTES);
  let count = 0;
  for (let n; (n = await conn.read(buffer)) !== null;) count += n;
  await writeAll(conn, new TextEncoder().encode(`${count}\n`));
}

async function source(conn: Deno.TcpConn): Promise<void> {
  const request = new Uint8Array(SOURCE_REQUEST_BYTES);
  let text = "";
  while (!text.includes("\n")) {
    const n = await conn.read(request);
    if (n === null) return;
    text += new TextDecoder().decode(request.subarray(0, n));
  }
  const total = Number(text.trim());
  const chunk = crypto.getRandomValues(new Uint8Array(SOURCE_CHUNK_BYTES));
  for (let sent = 0; sent < total; sent += chunk.length) {
    await writeAll(conn, chunk.subarray(0, Math.min(chunk.length, total - sent)));
  }
  await conn.closeWrite();
}

async function serve(name: string, handle: (conn: Deno.TcpConn) => Promise<void>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  console.log(`${name} ${listener.addr.port}`);
  while (true) {
    let conn: Deno.TcpConn;
    try {
      conn = await listener.accept();
    } catch (error) {
      console.error(`${name}: cannot accept: ${(error as Error).message}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
      continue;
    }
    conn.setNoDelay(true);
    handle(conn).catch(() => {}).finally(() => {
      try {
        conn.close();
      } catch {
        // already closed
      }
    });
  }
}

serve("echo", echo);
serve("sink", sink);
serve("source", source);
