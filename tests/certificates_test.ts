/** Which of the operator's certificates the HTTPS front terminates a server name with. */

import { assertEquals, assertThrows } from "./assert.ts";
import { selfSigned } from "./certs.ts";
import { tempStateDir } from "./helpers.ts";
import { CertificateFiles } from "../lib/front/certificates.ts";

function certificate(dir: string, name: string, san?: string) {
  return selfSigned(dir, name.replace("*", "star"), `/CN=${name}`, san);
}

Deno.test("certificates: an exact name wins over a wildcard, which covers one label", async () => {
  const dir = tempStateDir();
  const wildcard = await certificate(dir, "*.tunnel.test", "DNS:*.tunnel.test");
  const exact = await certificate(
    dir,
    "www.tunnel.test",
    "DNS:www.tunnel.test,DNS:www.example.test",
  );
  const files = new CertificateFiles([wildcard, exact]);
  assertEquals(files.certificateFor("web.tunnel.test"), wildcard);
  assertEquals(files.certificateFor("WWW.tunnel.test"), exact);
  assertEquals(files.certificateFor("www.example.test"), exact);
  assertEquals(files.certificateFor("a.b.tunnel.test"), undefined, "a wildcard is one label");
  assertEquals(files.certificateFor("tunnel.test"), undefined);
  const nameless = await certificate(dir, "nameless");
  assertThrows(() => new CertificateFiles([nameless]), /names no DNS name \(subjectAltName\)/);
});
