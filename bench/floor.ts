/**
 * The floor of porthole's connection flow in this runtime: the same hops with nothing else. A
 * client connects to the relay; the relay sends a 16-byte id over the agent's one control
 * connection; the agent dials the service and the relay at once, sends the id on the new data
 * connection, and splices it with the service; the relay splices the data connection with the
 * client. No authentication, no JSON, no timeouts, no logs, no limits. `make bench` runs its
 * setup probe through this too, so porthole's figures can be read against what Deno itself costs.
 *
 *   deno run --allow-net=127.0.0.1 bench/floor.ts relay PUBLIC_PORT AGENT_PORT
 *   deno run --allow-net=127.0.0.1 bench/floor.ts agent AGENT_PORT SERVICE_PORT
 *
 * Each prints "ready" once it can serve.
 */

const ID_BYTES = 16;
const BUFFER_BYTES = 16 * 1024;
const hostname = "127.0.0.1";

function nodelay(conn: Deno.TcpConn): Deno.TcpConn {
  conn.setNoDelay(true);
  return conn;
}

async function readExactly(conn: Deno.Conn, into: Uint8Array): Promise<boolean> {
  for (let at = 0; at < into.length;) {
    const n = await conn.read(into.subarray(at));
    if (n === null) return false;
    at += n;
  }
  return true;
}

async function pump(from: Deno.Conn, to: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(BUFFER_BYTES);
  for (let n; (n = await from.read(buffer)) !== null;) {
    for (let at = 0; at < n;) at += await to.write(buffer.subarray(at, n));
  }
  await to.closeWrite();
}

function splice(a: Deno.Conn, b: Deno.Conn): void {
  Promise.all([pump(a, b), pump(b, a)]).catch(() => {}).finally(() => {
    for (const conn of [a, b]) {
      try {
        conn.close();
      } catch { /* already closed */ }
    }
  });
}

async function relay(publicPort: number, agentPort: number): Promise<void> {
  const agents = Deno.listen({ hostname, port: agentPort });
  const clients = Deno.listen({ hostname, port: publicPort });
  console.log("ready");
  const control = nodelay(await agents.accept());
  const waiting = new Map<string, Deno.TcpConn>();
  let next = 0;
  (async () => {
    for await (const conn of agents) {
      const id = new Uint8Array(ID_BYTES);
      // A data connection that fails before its id costs that connection only, not the floor.
      readExactly(nodelay(conn), id).then((complete) => {
        const client = complete ? waiting.get(id.join()) : undefined;
        waiting.delete(id.join());
        if (client) splice(client, conn);
        else conn.close();
      }, () => conn.close());
    }
  })();
  for await (const client of clients) {
    const id = new Uint8Array(ID_BYTES);
    new DataView(id.buffer).setUint32(0, next++);
    waiting.set(id.join(), nodelay(client));
    await control.write(id);
  }
}

async function agent(agentPort: number, servicePort: number): Promise<void> {
  const control = nodelay(await Deno.connect({ hostname, port: agentPort }));
  console.log("ready");
  const id = new Uint8Array(ID_BYTES);
  while (await readExactly(control, id)) {
    const claim = id.slice();
    Promise.all([
      Deno.connect({ hostname, port: servicePort }),
      Deno.connect({ hostname, port: agentPort }),
    ]).then(async ([service, data]) => {
      await nodelay(data).write(claim);
      splice(data, nodelay(service));
    }).catch(() => {}); // a failed dial costs that connection only (its client times out)
  }
}

const [role, first, second] = Deno.args;
if (role === "relay") await relay(Number(first), Number(second));
else if (role === "agent") await agent(Number(first), Number(second));
else {throw new Error(
    "usage: floor.ts relay PUBLIC_PORT AGENT_PORT | agent AGENT_PORT SERVICE_PORT",
  );}
