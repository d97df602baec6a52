/**
 * Counters, gauges and histograms, rendered in the Prometheus text exposition format
 * (version 0.0.4). Deliberately small: labelled series kept in maps, gauges that can be
 * read at scrape time from a callback, fixed histogram buckets.
 *
 * Callers are responsible for bounded label values (route templates and configured
 * names, never raw paths or client-sent strings).
 *
 * @module
 */

type Labels = Readonly<Record<string, string>>;

function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll("\n", "\\n").replaceAll('"', '\\"');
}

function labelText(labels: Labels): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return "";
  return `{${entries.map(([name, value]) => `${name}="${escapeLabel(value)}"`).join(",")}}`;
}

/**
 * The map key of a label set: names and values joined with separators no label holds.
 * Recording happens on every request, so the key avoids the escaping and allocations of
 * the rendered form, which is built only at scrape time.
 */
function seriesKey(labels: Labels): string {
  let key = "";
  for (const name in labels) key += `${name}\u0000${labels[name]}\u0001`;
  return key;
}

function formatNumber(value: number): string {
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  if (Number.isNaN(value)) return "NaN";
  return String(value);
}

interface Metric {
  readonly name: string;
  render(): string[];
}

function header(name: string, help: string, type: string): string[] {
  return [
    `# HELP ${name} ${help.replaceAll("\\", "\\\\").replaceAll("\n", "\\n")}`,
    `# TYPE ${name} ${type}`,
  ];
}

/** A monotonically increasing counter with labels. */
export class Counter implements Metric {
  readonly #values = new Map<string, { labels: Labels; value: number }>();
  constructor(readonly name: string, readonly help: string) {}

  inc(labels: Labels = {}, by = 1): void {
    const key = seriesKey(labels);
    const entry = this.#values.get(key);
    if (entry) entry.value += by;
    else this.#values.set(key, { labels, value: by });
  }

  /** The current value for these labels (0 when never incremented). */
  get(labels: Labels = {}): number {
    return this.#values.get(seriesKey(labels))?.value ?? 0;
  }

  render(): string[] {
    const lines = header(this.name, this.help, "counter");
    for (const { labels, value } of this.#values.values()) {
      lines.push(`${this.name}${labelText(labels)} ${formatNumber(value)}`);
    }
    return lines;
  }
}

/**
 * A metric whose series are read at scrape time from their owner: a gauge, or a counter
 * that something else keeps (such as the log writer's dropped lines).
 */
export class Gauge implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly read: () => Iterable<[Labels, number]>,
    readonly type: "gauge" | "counter" = "gauge",
  ) {}

  render(): string[] {
    const lines = header(this.name, this.help, this.type);
    for (const [labels, value] of this.read()) {
      lines.push(`${this.name}${labelText(labels)} ${formatNumber(value)}`);
    }
    return lines;
  }
}

/** A histogram with fixed buckets (upper bounds, in the metric's unit). */
export class Histogram implements Metric {
  readonly #series = new Map<
    string,
    { labels: Labels; counts: number[]; sum: number; count: number }
  >();
  constructor(readonly name: string, readonly help: string, readonly buckets: readonly number[]) {}

  observe(labels: Labels, value: number): void {
    const key = seriesKey(labels);
    let series = this.#series.get(key);
    if (!series) {
      series = { labels, counts: new Array(this.buckets.length).fill(0), sum: 0, count: 0 };
      this.#series.set(key, series);
    }
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]) series.counts[i]++;
    series.sum += value;
    series.count++;
  }

  render(): string[] {
    const lines = header(this.name, this.help, "histogram");
    for (const { labels, counts, sum, count } of this.#series.values()) {
      this.buckets.forEach((bound, i) => {
        lines.push(
          `${this.name}_bucket${labelText({ ...labels, le: formatNumber(bound) })} ${counts[i]}`,
        );
      });
      lines.push(`${this.name}_bucket${labelText({ ...labels, le: "+Inf" })} ${count}`);
      lines.push(`${this.name}_sum${labelText(labels)} ${formatNumber(sum)}`);
      lines.push(`${this.name}_count${labelText(labels)} ${count}`);
    }
    return lines;
  }
}

/** A set of metrics rendered together. */
export class MetricsRegistry {
  readonly #metrics: Metric[] = [];

  add<M extends Metric>(metric: M): M {
    this.#metrics.push(metric);
    return metric;
  }

  /** The whole exposition, newline-terminated. */
  render(): string {
    return `${this.#metrics.flatMap((metric) => metric.render()).join("\n")}\n`;
  }
}

/** Content type of the text exposition format. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
