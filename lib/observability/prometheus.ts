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
  /** Drops every series whose `label` is `value` (an endpoint that was removed). */
  forget?(label: string, value: string): void;
}

function header(name: string, help: string, type: string): string[] {
  return [
    `# HELP ${name} ${help.replaceAll("\\", "\\\\").replaceAll("\n", "\\n")}`,
    `# TYPE ${name} ${type}`,
  ];
}

/** One labelled series of a counter; callers that record often keep it and add to `value`. */
export interface CounterSeries {
  readonly labels: Labels;
  value: number;
}

/** A monotonically increasing counter with labels. */
export class Counter implements Metric {
  readonly #values = new Map<string, CounterSeries>();
  constructor(readonly name: string, readonly help: string) {}

  /** The series for these labels, created at 0 when new. */
  series(labels: Labels): CounterSeries {
    const key = seriesKey(labels);
    let series = this.#values.get(key);
    if (!series) this.#values.set(key, series = { labels, value: 0 });
    return series;
  }

  inc(labels: Labels = {}, by = 1): void {
    this.series(labels).value += by;
  }

  /** The current value for these labels (0 when never incremented). */
  get(labels: Labels = {}): number {
    return this.#values.get(seriesKey(labels))?.value ?? 0;
  }

  forget(label: string, value: string): void {
    for (const [key, series] of this.#values) {
      if (series.labels[label] === value) this.#values.delete(key);
    }
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

/** One labelled series of a histogram; callers that record often keep it. */
export class HistogramSeries {
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(readonly labels: Labels, readonly buckets: readonly number[]) {
    this.counts = new Array(buckets.length).fill(0);
  }

  observe(value: number): void {
    const buckets = this.buckets;
    for (let i = 0; i < buckets.length; i++) if (value <= buckets[i]) this.counts[i]++;
    this.sum += value;
    this.count++;
  }
}

/** A histogram with fixed buckets (upper bounds, in the metric's unit). */
export class Histogram implements Metric {
  readonly #series = new Map<string, HistogramSeries>();
  constructor(readonly name: string, readonly help: string, readonly buckets: readonly number[]) {}

  /** The series for these labels, created empty when new. */
  series(labels: Labels): HistogramSeries {
    const key = seriesKey(labels);
    let series = this.#series.get(key);
    if (!series) this.#series.set(key, series = new HistogramSeries(labels, this.buckets));
    return series;
  }

  observe(labels: Labels, value: number): void {
    this.series(labels).observe(value);
  }

  forget(label: string, value: string): void {
    for (const [key, series] of this.#series) {
      if (series.labels[label] === value) this.#series.delete(key);
    }
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

  /** Drops every series labelled `label="value"`, in every metric. */
  forget(label: string, value: string): void {
    for (const metric of this.#metrics) metric.forget?.(label, value);
  }

  /** The whole exposition, newline-terminated. */
  render(): string {
    return `${this.#metrics.flatMap((metric) => metric.render()).join("\n")}\n`;
  }
}

/** Content type of the text exposition format. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
