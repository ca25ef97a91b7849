/** Reading what the admin API's `/metrics` says, as a Prometheus scraper would. */

import { assert } from "./assert.ts";

/** The samples of a Prometheus text, by `name{label="value",...}` as written (labels sorted). */
export function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const types = new Set<string>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const typed = /^# TYPE (\w+) (counter|gauge|histogram)$/.exec(line);
    if (typed) types.add(typed[1]);
    if (line.startsWith("#")) continue;
    const sample = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert(sample, `not a sample line: ${line}`);
    const [, name, labels = "", value] = sample;
    assert(
      [...types].some((family) => name === family || name.startsWith(`${family}_`)),
      `${name} has no # TYPE line before it`,
    );
    const sorted = [...labels.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)]
      .map(([, key, val]) => `${key}="${val}"`).sort().join(",");
    samples.set(sorted ? `${name}{${sorted}}` : name, Number(value));
  }
  return samples;
}
