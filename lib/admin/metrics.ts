/**
 * Metrics in the Prometheus text exposition format (version 0.0.4), for `GET /metrics` of the
 * admin API (lib/admin/server.ts): each family with its `# HELP` and `# TYPE`, then its samples.
 *
 * @example
 * ```ts
 * const text = formatMetrics([
 *   { name: "porthole_agents", help: "Agents connected.", type: "gauge", samples: [{ value: 2 }] },
 * ]);
 * // # HELP porthole_agents Agents connected.\n# TYPE porthole_agents gauge\nporthole_agents 2\n
 * ```
 */

/** Label names and values of one sample. */
export type Labels = Readonly<Record<string, string>>;

/** One family of metrics: a name, its help, its type, and its samples. */
export interface MetricFamily {
  name: string;
  help: string;
  type: "counter" | "gauge" | "histogram";
  /** Each sample; for a histogram, `suffix` names `_bucket`, `_sum` or `_count`. */
  samples: { labels?: Labels; value: number; suffix?: string }[];
}

/** A family of one gauge without labels. */
export function gauge(name: string, help: string, value: number): MetricFamily {
  return { name, help, type: "gauge", samples: [{ value }] };
}

/** The content type of {@link formatMetrics}'s text. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** The families as Prometheus scrapes them. */
export function formatMetrics(families: readonly MetricFamily[]): string {
  const lines: string[] = [];
  for (const { name, help, type, samples } of families) {
    lines.push(`# HELP ${name} ${help.replaceAll("\\", "\\\\").replaceAll("\n", "\\n")}`);
    lines.push(`# TYPE ${name} ${type}`);
    for (const { labels, value, suffix = "" } of samples) {
      lines.push(`${name}${suffix}${formatLabels(labels)} ${formatValue(value)}`);
    }
  }
  return lines.join("\n") + "\n";
}

function formatLabels(labels: Labels | undefined): string {
  const entries = Object.entries(labels ?? {});
  if (entries.length === 0) return "";
  const escaped = entries.map(([key, value]) =>
    `${key}="${value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")}"`
  );
  return `{${escaped.join(",")}}`;
}

function formatValue(value: number): string {
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return Number.isNaN(value) ? "NaN" : String(value);
}

/** A histogram of observed values (seconds, say), with fixed upper bounds. */
export class Histogram {
  readonly #bounds: readonly number[];
  readonly #counts: number[];
  #sum = 0;
  #count = 0;

  /** A histogram with these bucket upper bounds (ascending; `+Inf` is added). */
  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
    this.#counts = bounds.map(() => 0);
  }

  /** Counts one observation. */
  observe(value: number): void {
    this.#sum += value;
    this.#count++;
    this.#bounds.forEach((bound, i) => {
      if (value <= bound) this.#counts[i]++;
    });
  }

  /** The samples of a histogram family (`_bucket` per bound, `_sum`, `_count`). */
  samples(labels: Labels = {}): MetricFamily["samples"] {
    return [
      ...this.#bounds.map((bound, i) => ({
        labels: { ...labels, le: String(bound) },
        value: this.#counts[i],
        suffix: "_bucket",
      })),
      { labels: { ...labels, le: "+Inf" }, value: this.#count, suffix: "_bucket" },
      { labels, value: this.#sum, suffix: "_sum" },
      { labels, value: this.#count, suffix: "_count" },
    ];
  }
}
