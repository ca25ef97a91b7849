/** Certificates made at test time with openssl, for the TLS fronts' tests. */

import { assert } from "./assert.ts";

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
