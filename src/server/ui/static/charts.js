import { h, svg } from './dom.js';

/** SVG charts for the metrics page, drawn afresh on every sample (a few dozen elements each). */

const W = 360;
const H = 150;
const PAD = { left: 44, right: 8, top: 10, bottom: 22 };

/** The smallest of 1, 2, 5 × 10^k that is at least `v`: a round top for an axis. */
export function niceCeil(v) {
  if (!(v > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * power).find((top) => top >= v * (1 - 1e-12));
}

const yOf = (top) => (v) => PAD.top + (H - PAD.top - PAD.bottom) * (1 - v / top);

function grid(top, format) {
  const y = yOf(top);
  return [0, top / 2, top].map((v) => [
    svg('line', { class: 'grid', x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v) }),
    svg('text', { class: 'axis', x: PAD.left - 5, y: y(v) + 3, 'text-anchor': 'end' }, format(v)),
  ]);
}

/**
 * A line chart of recent samples: `series` [{ name, values }] with the newest value last, over `length` slots, so
 * the lines move left as samples arrive. The figure's data-latest holds the newest values (for tests and tools).
 * @param {HTMLElement} figure
 * @param {{ title: string, series: { name: string, values: number[] }[], length: number,
 *   format?: (v: number) => string, max?: number }} spec
 */
export function lineChart(figure, { title, series, length, format = String, max }) {
  const top = max ?? niceCeil(Math.max(0, ...series.flatMap((s) => s.values)));
  const y = yOf(top);
  const x = (k, n) => PAD.left + ((W - PAD.left - PAD.right) * (length - n + k)) / (length - 1);
  const latest = series.map((s) => s.values.at(-1) ?? 0);
  const label = series.map((s, k) => `${s.name} ${format(latest[k])}`);
  figure.replaceChildren(
    h(
      'figcaption',
      {},
      h('span', { class: 'chart-title' }, title),
      series.map((_, k) => h('span', { class: `legend series-${k % 4}` }, label[k])),
    ),
    svg(
      'svg',
      { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${title}: ${label.join(', ')}` },
      grid(top, format),
      series.map((s, k) =>
        svg('polyline', {
          class: `line series-${k % 4}`,
          points: s.values.map((v, i) => `${x(i, s.values.length).toFixed(1)},${y(v).toFixed(1)}`).join(' '),
        }),
      ),
    ),
  );
  figure.dataset.latest = JSON.stringify(latest);
}

/** "≤ 25 ms"-style bucket labels, short enough to sit under a bar. */
function boundLabel(le) {
  if (le === Number.POSITIVE_INFINITY) return '∞';
  return le < 1 ? `${Math.round(le * 1000)}ms` : `${le}s`;
}

/** A histogram: `buckets` [{ le, count }] as bars labelled by their upper bounds; data-total holds the count. */
export function barChart(figure, { title, buckets, summary }) {
  const top = niceCeil(Math.max(0, ...buckets.map((b) => b.count)));
  const y = yOf(top);
  const width = (W - PAD.left - PAD.right) / Math.max(1, buckets.length);
  const count = buckets.reduce((n, b) => n + b.count, 0);
  figure.replaceChildren(
    h('figcaption', {}, h('span', { class: 'chart-title' }, title), h('span', { class: 'summary' }, summary)),
    svg(
      'svg',
      { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${title}: ${summary}` },
      grid(top, (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1))),
      buckets.map((b, k) => [
        svg(
          'rect',
          { class: 'bar', x: PAD.left + k * width + 1, y: y(b.count), width: width - 2, height: y(0) - y(b.count) },
          svg('title', {}, `≤ ${boundLabel(b.le)}: ${b.count}`),
        ),
        // Every other bound is labelled: all of them would overlap at this width (each bar's title has its own).
        k % 2 === 0 || k === buckets.length - 1
          ? svg(
              'text',
              { class: 'axis small', x: PAD.left + (k + 0.5) * width, y: H - 8, 'text-anchor': 'middle' },
              boundLabel(b.le),
            )
          : null,
      ]),
    ),
  );
  figure.dataset.total = String(count);
}
