/** Certificates made at test time with openssl, for the TLS fronts' tests. */

import { assert } from "./assert.ts";
import { tempStateDir } from "./helpers.ts";

/**
 * A self-signed P-256 certificate `<file>.pem` with its key `<file>.key` in `dir`, for subject
 * `subject` (e.g. `/CN=web`), with `san` as its subjectAltName (none if undefined); returns both.
 */
export async function selfSigned(
  dir: string,
  file: string,
  subject: string,
  san?: string,
): Promise<{ cert: string; key: string }> {
  const path = `${dir}/${file}`;
  const args = [
    ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
    ...["-keyout", `${path}.key`, "-out", `${path}.pem`, "-days", "2", "-subj", subject],
    ...(san === undefined ? [] : ["-addext", `subjectAltName=${san}`]),
  ];
  const result = await new Deno.Command("openssl", { args, stderr: "piped" }).output();
  assert(result.success, new TextDecoder().decode(result.stderr));
  return {
    cert: await Deno.readTextFile(`${path}.pem`),
    key: await Deno.readTextFile(`${path}.key`),
  };
}

async function openssl(args: string[], cwd: string): Promise<void> {
  const result = await new Deno.Command("openssl", { args, cwd, stderr: "piped" }).output();
  assert(result.success, new TextDecoder().decode(result.stderr));
}

/**
 * A CA (`ca.pem`), a server certificate it signed for `san` (`relay.pem`, `relay.key`) and another
 * CA (`other.pem`), in a fresh directory; returns its path.
 */
export async function makeCa(san = "IP:127.0.0.1,DNS:localhost"): Promise<string> {
  const dir = tempStateDir();
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await openssl([
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "2",
    "-subj",
    "/CN=test CA",
  ], dir);
  await openssl(
    ["req", ...ec, "-keyout", "relay.key", "-out", "relay.csr", "-subj", "/CN=relay"],
    dir,
  );
  await Deno.writeTextFile(`${dir}/ext.cnf`, `subjectAltName=${san}\n`);
  await openssl([
    "x509",
    "-req",
    "-in",
    "relay.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "relay.pem",
    "-days",
    "2",
    "-extfile",
    "ext.cnf",
  ], dir);
  await openssl([
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "other.key",
    "-out",
    "other.pem",
    "-days",
    "2",
    "-subj",
    "/CN=other CA",
  ], dir);
  return dir;
}
