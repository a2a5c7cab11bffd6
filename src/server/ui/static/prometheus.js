/** Reading the server's /metrics (Prometheus text format) in the page. */

const SPECIAL = { '+Inf': Number.POSITIVE_INFINITY, Inf: Number.POSITIVE_INFINITY, '-Inf': Number.NEGATIVE_INFINITY };

/** A sample value or `le` bound; NaN only when the text says NaN (anything else unreadable is null). */
function number(text) {
  if (text in SPECIAL) return SPECIAL[text];
  if (text === 'NaN') return Number.NaN;
  const n = Number(text);
  return text.trim() !== '' && !Number.isNaN(n) ? n : null;
}

/** Every sample: { name, labels, value }. Comments (# HELP, # TYPE) and malformed lines are skipped. */
export function parsePrometheus(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    // name{labels} value [timestamp]
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?\s*$/.exec(line);
    if (!m || number(m[3]) === null) continue;
    const labels = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    }
    samples.push({ name: m[1], labels, value: number(m[3]) });
  }
  return samples;
}

const matches = (labels, match) => Object.entries(match).every(([k, v]) => labels[k] === v);

/** The sum of a metric over the series whose labels include `match`. */
export function total(samples, name, match = {}) {
  let sum = 0;
  for (const s of samples) if (s.name === name && matches(s.labels, match)) sum += s.value;
  return sum;
}

/** Each series' value by one label, e.g. KV cache use by model_name. */
export function byLabel(samples, name, label) {
  const out = new Map();
  for (const s of samples) if (s.name === name && label in s.labels) out.set(s.labels[label], s.value);
  return out;
}

/** The values a label takes across all samples (e.g. the model names). */
export function labelValues(samples, label) {
  return [...new Set(samples.filter((s) => label in s.labels).map((s) => s.labels[label]))].sort();
}

/**
 * A histogram summed over matching series: `buckets` as [{ le, count }] with the count of each bucket alone (not
 * cumulative), plus the observations' `count` and `sum`.
 */
export function histogram(samples, name, match = {}) {
  const cumulative = new Map();
  for (const s of samples) {
    if (s.name !== `${name}_bucket` || !matches(s.labels, match)) continue;
    const le = number(s.labels.le);
    cumulative.set(le, (cumulative.get(le) ?? 0) + s.value);
  }
  const les = [...cumulative.keys()].sort((a, b) => a - b);
  const buckets = les.map((le, k) => ({ le, count: cumulative.get(le) - (k ? cumulative.get(les[k - 1]) : 0) }));
  return { buckets, count: total(samples, `${name}_count`, match), sum: total(samples, `${name}_sum`, match) };
}

/** The q-quantile of a histogram, interpolated inside its bucket as Prometheus's histogram_quantile does. */
export function quantile(hist, q) {
  if (!hist.count) return null;
  const rank = q * hist.count;
  let seen = 0;
  let lower = 0;
  for (const { le, count } of hist.buckets) {
    if (seen + count >= rank && count > 0) {
      if (le === Number.POSITIVE_INFINITY) return lower;
      return lower + (le - lower) * ((rank - seen) / count);
    }
    seen += count;
    lower = le;
  }
  return lower;
}
