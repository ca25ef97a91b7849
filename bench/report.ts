/**
 * Measures and how they are shown: a table on stdout and an SVG chart of the tunnel as a fraction
 * of direct (or of its budget), and of the TLS tunnel as a fraction of the plain one (measure 6),
 * with the target of each measure marked.
 */

/**
 * A bound on tunnel ÷ direct ("ratio") or on the tunnel value itself ("tunnel"): at least
 * `value` when higher is better, at most `value` when lower is.
 */
export interface Target {
  of: "ratio" | "tunnel";
  value: number;
}

/** One row of the results. */
export interface Measure {
  name: string;
  unit: string;
  /** Which way is good: "higher" for rates, "lower" for times, memory, CPU and failures. */
  better: "higher" | "lower";
  /**
   * Measure 6: the row compares the tunnel with TLS between agent and relay (in `tunnel`) with
   * the plain-TCP tunnel (in `direct`), so that its ratio is TLS ÷ plain.
   */
  tls?: boolean;
  /** The same probe on a direct connection, when there is one (for `tls`: the plain tunnel). */
  direct?: number;
  tunnel: number;
  /** The tunnel value before the load (RSS rows), shown as `idle → tunnel`. */
  idle?: number;
  target?: Target;
  /** Why the tunnel value cannot be trusted (e.g. the sink counted the wrong number of bytes). */
  problem?: string;
}

/** tunnel ÷ direct, or undefined when there is no direct value to divide by. */
export function ratioOf(measure: Measure): number | undefined {
  const { direct, tunnel } = measure;
  return direct && Number.isFinite(direct) ? tunnel / direct : undefined;
}

/** Whether the measure meets its target; undefined when it has none. */
export function meets(measure: Measure): boolean | undefined {
  const { target } = measure;
  if (!target) return undefined;
  if (measure.problem) return false;
  const value = target.of === "ratio" ? ratioOf(measure) : measure.tunnel;
  if (value === undefined || !Number.isFinite(value)) return false;
  return measure.better === "higher" ? value >= target.value : value <= target.value;
}

/** A number with as many decimals as its size deserves; "—" for none. */
export function formatNumber(value: number | undefined): string {
  if (value === undefined || Number.isNaN(value)) return "—";
  if (Number.isInteger(value) || Math.abs(value) >= 100) return Math.round(value).toString();
  return value.toFixed(Math.abs(value) >= 10 ? 1 : Math.abs(value) >= 1 ? 2 : 3);
}

function describeTarget(measure: Measure): string {
  const { target } = measure;
  if (!target) return "—";
  const sign = measure.better === "higher" ? "≥" : "≤";
  return `${sign} ${target.value}${target.of === "ratio" ? "×" : ""}`;
}

/** Headers of the table's sections: tunnel vs direct, then TLS vs plain (measure 6). */
const HEADERS = {
  direct: ["measure", "direct", "tunnel", "ratio", "target"],
  tls: ["6. TLS between agent and relay", "plain", "TLS", "ratio", "target"],
};

/**
 * The table: measure | direct | tunnel | ratio | target, and a ✓ or ✗ per target; the rows of
 * measure 6 follow under a header of their own: measure | plain | TLS | ratio | target.
 */
export function formatTable(measures: Measure[]): string {
  const sections = [
    { header: HEADERS.direct, measures: measures.filter((measure) => !measure.tls) },
    { header: HEADERS.tls, measures: measures.filter((measure) => measure.tls) },
  ].filter((section, i) => i === 0 || section.measures.length > 0);
  const cells = (measure: Measure) => {
    const verdict = meets(measure);
    const tunnel = formatNumber(measure.tunnel);
    return [
      `${measure.name} (${measure.unit})`,
      formatNumber(measure.direct),
      measure.idle === undefined ? tunnel : `${formatNumber(measure.idle)} → ${tunnel}`,
      ratioOf(measure) === undefined ? "—" : `${formatNumber(ratioOf(measure))}×`,
      describeTarget(measure) + (verdict === undefined ? "" : verdict ? " ✓" : " ✗"),
    ];
  };
  const blocks = sections.map((section) => [section.header, section.measures.map(cells)] as const);
  const all = blocks.flatMap(([header, rows]) => [header, ...rows]);
  const widths = HEADERS.direct.map((_, i) => Math.max(...all.map((row) => row[i].length)));
  const line = (row: string[]) =>
    row.map((cell, i) => i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i])).join(" | ");
  const rule = widths.map((width) => "-".repeat(width)).join("-|-");
  const problems = measures.filter((measure) => measure.problem)
    .map((measure) => `✗ ${measure.name}: ${measure.problem}`);
  return [
    ...blocks.flatMap(([header, rows], i) => [
      ...(i > 0 ? [""] : []),
      line(header),
      rule,
      ...rows.map(line),
    ]),
    ...problems,
  ].join("\n");
}

/** One bar of the chart. */
interface Bar {
  label: string;
  /** Bar length, on the panel's scale. */
  value: number;
  /** Where the target mark goes, on the same scale. */
  mark?: number;
  verdict?: boolean;
  /** Shown right of the plot: the value and the target. */
  text: string;
}

const WIDTH = 1_000;
const LABEL_WIDTH = 330;
const PLOT_WIDTH = 420;
const ROW_HEIGHT = 24;
const COLORS = { met: "#2e7d32", missed: "#c62828", none: "#90a4ae", mark: "#111" };

function escapeXml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

function colorOf(verdict: boolean | undefined): string {
  return verdict === undefined ? COLORS.none : verdict ? COLORS.met : COLORS.missed;
}

function targetNote(measure: Measure): string {
  return measure.target ? ` (target ${describeTarget(measure)})` : "";
}

/**
 * Bars of measures compared with a baseline that are better `better`: tunnel ÷ direct (or, for
 * measure 6, TLS ÷ plain).
 */
function ratioBars(measures: Measure[], better: Measure["better"]): Bar[] {
  return measures.filter((measure) =>
    measure.better === better && (ratioOf(measure) !== undefined || measure.target?.of === "ratio")
  ).map((measure) => ({
    label: measure.name,
    value: ratioOf(measure) ?? NaN,
    mark: measure.target?.value,
    verdict: meets(measure),
    text: `${formatNumber(ratioOf(measure))}×` + targetNote(measure),
  }));
}

/** Bars of measures with an absolute, non-zero budget: tunnel ÷ budget. */
function budgetBars(measures: Measure[]): Bar[] {
  return measures.filter((measure) => measure.target?.of === "tunnel" && measure.target.value > 0)
    .map((measure) => ({
      label: measure.name,
      value: measure.tunnel / measure.target!.value,
      mark: 1,
      verdict: meets(measure),
      text: `${formatNumber(measure.tunnel)} ${measure.unit}` + targetNote(measure),
    }));
}

/** A step between axis ticks that gives at most about eight of them up to `max`. */
function tickStep(max: number): number {
  return [0.25, 0.5, 1, 2, 5, 10, 20, 50].find((step) => max / step <= 8) ?? max / 4;
}

/** One panel of bars on a scale from 0, with a reference line at 1; returns SVG and its bottom. */
function panel(title: string, reference: string, bars: Bar[], top: number): [string, number] {
  const finite = bars.flatMap((bar) => [bar.value, bar.mark ?? 0]).filter(Number.isFinite);
  const step = tickStep(Math.max(1.25, ...finite) * 1.05);
  const max = Math.ceil(Math.max(1.25, ...finite) * 1.05 / step) * step;
  const x = (value: number) => LABEL_WIDTH + (Math.min(value, max) / max) * PLOT_WIDTH;
  const plotTop = top + 36;
  const plotBottom = plotTop + bars.length * ROW_HEIGHT;
  const parts = [
    `<text x="10" y="${top + 16}" font-weight="bold">${escapeXml(title)}</text>`,
    `<text x="${x(1)}" y="${plotTop - 6}" text-anchor="middle" fill="#555">1 = ${reference}</text>`,
  ];
  for (let tick = 0; tick <= max + 1e-9; tick += step) {
    parts.push(
      `<line x1="${x(tick)}" y1="${plotTop}" x2="${x(tick)}" y2="${plotBottom}" stroke="#ddd"/>`,
      `<text x="${x(tick)}" y="${plotBottom + 14}" text-anchor="middle" fill="#555">${tick}</text>`,
    );
  }
  parts.push(
    `<line x1="${x(1)}" y1="${plotTop}" x2="${x(1)}" y2="${plotBottom}" stroke="#555" ` +
      `stroke-width="1.5"/>`,
  );
  bars.forEach((bar, i) => {
    const y = plotTop + i * ROW_HEIGHT;
    const length = Number.isFinite(bar.value) ? x(bar.value) - LABEL_WIDTH : 0;
    parts.push(
      `<text x="${LABEL_WIDTH - 8}" y="${y + 16}" text-anchor="end">${escapeXml(bar.label)}</text>`,
      `<rect x="${LABEL_WIDTH}" y="${y + 4}" width="${length}" height="${ROW_HEIGHT - 8}" ` +
        `fill="${colorOf(bar.verdict)}"/>`,
      `<text x="${LABEL_WIDTH + PLOT_WIDTH + 12}" y="${y + 16}">${escapeXml(bar.text)}</text>`,
    );
    if (bar.mark !== undefined) {
      parts.push(
        `<line x1="${x(bar.mark)}" y1="${y + 1}" x2="${x(bar.mark)}" y2="${y + ROW_HEIGHT - 1}" ` +
          `stroke="${COLORS.mark}" stroke-width="3"/>`,
      );
    }
  });
  return [parts.join("\n"), plotBottom + 28];
}

/**
 * The chart: tunnel ÷ direct for the measures compared with a direct connection (one panel where
 * higher is better, one where lower is), tunnel ÷ budget for those with an absolute budget, TLS ÷
 * plain tunnel for measure 6 (two panels again), and a line per count that must be zero
 * (failures).
 */
export function renderChart(measures: Measure[], title: string): string {
  const body: string[] = [
    `<text x="10" y="22" font-size="16" font-weight="bold">${escapeXml(title)}</text>`,
    `<text x="10" y="42" fill="#555">bars: green meets its target, red misses it, grey has ` +
    `none; black marks: the targets</text>`,
  ];
  let top = 56;
  const plain = measures.filter((measure) => !measure.tls);
  const tls = measures.filter((measure) => measure.tls);
  const panels = [
    ["Tunnel ÷ direct, higher is better (rates)", "direct", ratioBars(plain, "higher")],
    ["Tunnel ÷ direct, lower is better (times)", "direct", ratioBars(plain, "lower")],
    ["Tunnel ÷ budget, lower is better", "budget", budgetBars(plain)],
    ["6. TLS ÷ plain tunnel, higher is better (rates)", "plain", ratioBars(tls, "higher")],
    ["6. TLS ÷ plain tunnel, lower is better (times, CPU)", "plain", ratioBars(tls, "lower")],
  ] as const;
  for (const [name, reference, bars] of panels) {
    if (bars.length === 0) continue;
    const [svg, bottom] = panel(name, reference, bars, top);
    body.push(svg);
    top = bottom;
  }
  const zeros = measures.filter((measure) => measure.target?.value === 0);
  if (zeros.length > 0) {
    body.push(`<text x="10" y="${top + 16}" font-weight="bold">Must be zero</text>`);
    zeros.forEach((measure, i) => {
      const y = top + 40 + i * ROW_HEIGHT;
      const verdict = meets(measure);
      const direct = measure.direct === undefined
        ? ""
        : ` (${measure.tls ? "plain" : "direct"}: ${formatNumber(measure.direct)})`;
      body.push(
        `<text x="${LABEL_WIDTH - 8}" y="${y}" text-anchor="end">${escapeXml(measure.name)}</text>`,
        `<text x="${LABEL_WIDTH}" y="${y}" fill="${colorOf(verdict)}">${verdict ? "✓" : "✗"} ` +
          `${formatNumber(measure.tunnel)} ${escapeXml(measure.unit)}${direct}</text>`,
      );
    });
    top += 40 + zeros.length * ROW_HEIGHT;
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${top}" ` +
    `viewBox="0 0 ${WIDTH} ${top}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${top}" fill="white"/>`,
    ...body,
    "</svg>",
  ].join("\n");
}
