import { api } from './api.js';
import { barChart, lineChart } from './charts.js';
import { $, formatSeconds, h } from './dom.js';
import { chatModels } from './model-show.js';
import { byLabel, histogram, labelValues, parsePrometheus, quantile, total } from './prometheus.js';

const POLL_MS = 1000;
const HISTORY = 120;
// The lines' time axis starts at 30 samples and grows to HISTORY, so a new page does not draw a sliver at the edge.
const MIN_SPAN = 30;

const percent = (v) => `${Math.round(v * 100)}%`;
const count = (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1));

/**
 * The metrics page: the server's /metrics read every second while shown. Gauges and the token rate are kept for
 * the last two minutes as lines; the latency histograms are drawn as they stand (since the server started).
 */
export function metricsPage(root) {
  const select = $('#metrics-model', root);
  const note = $('#metrics-note', root);
  const cards = $('#metric-cards', root);
  let history = [];
  let previous = null;
  let timer = null;

  function syncModels(models) {
    const known = [...select.options].map((o) => o.value).slice(1);
    if (known.join('\n') === models.join('\n')) return;
    const chosen = select.value;
    select.replaceChildren(
      h('option', { value: '' }, 'all models'),
      ...models.map((m) => h('option', { value: m }, m)),
    );
    select.value = models.includes(chosen) ? chosen : '';
  }

  /** `kvModels`: the models with a KV cache (those that generate text; an embedding model has none). */
  function sample(samples, match, kvModels) {
    const at = performance.now();
    const generated = total(samples, 'pagoda_generation_tokens_total', match);
    const rate = previous ? Math.max(0, (generated - previous.generated) / ((at - previous.at) / 1000)) : 0;
    previous = { at, generated };
    const kv = byLabel(samples, 'pagoda_kv_cache_usage_perc', 'model_name');
    for (const name of kv.keys()) {
      if (!kvModels.includes(name) || (match.model_name && name !== match.model_name)) kv.delete(name);
    }
    history.push({
      running: total(samples, 'pagoda_num_requests_running', match),
      waiting: total(samples, 'pagoda_num_requests_waiting', match),
      rate,
      kv,
    });
    if (history.length > HISTORY) history.shift();
  }

  function render(samples, match) {
    const last = history.at(-1);
    const ttft = histogram(samples, 'pagoda_time_to_first_token_seconds', match);
    const itl = histogram(samples, 'pagoda_inter_token_latency_seconds', match);
    const hits = total(samples, 'pagoda_prefix_cache_hits_total', match);
    const queries = total(samples, 'pagoda_prefix_cache_queries_total', match);
    const card = (label, value) => h('div', { class: 'card metric' }, h('span', {}, label), h('strong', {}, value));
    cards.replaceChildren(
      card('Running', count(last.running)),
      card('Waiting', count(last.waiting)),
      card('KV cache', percent(Math.max(0, ...last.kv.values()))),
      card('Tokens/s', last.rate.toFixed(1)),
      card('Generated tokens', count(total(samples, 'pagoda_generation_tokens_total', match))),
      card('Prompt tokens', count(total(samples, 'pagoda_prompt_tokens_total', match))),
      card('Finished', count(total(samples, 'pagoda_request_success_total', match))),
      card('Prefix cache hits', queries ? percent(hits / queries) : '–'),
      card('Preemptions', count(total(samples, 'pagoda_num_preemptions_total', match))),
    );
    const series = (name, pick) => ({ name, values: history.map(pick) });
    const length = Math.max(MIN_SPAN, history.length);
    lineChart($('#chart-requests', root), {
      title: 'Requests',
      series: [series('running', (s) => s.running), series('waiting', (s) => s.waiting)],
      length,
      format: count,
    });
    const kvModels = [...new Set(history.flatMap((s) => [...s.kv.keys()]))].sort();
    lineChart($('#chart-kv', root), {
      title: 'KV cache use',
      series: kvModels.map((m) => series(m, (s) => s.kv.get(m) ?? 0)),
      length,
      format: percent,
      max: 1,
    });
    lineChart($('#chart-tokens', root), {
      title: 'Generated tokens/s',
      series: [series('tokens/s', (s) => s.rate)],
      length,
      format: count,
    });
    const summary = (hist) =>
      hist.count
        ? `${hist.count} observed · p50 ${formatSeconds(quantile(hist, 0.5))} · p90 ${formatSeconds(quantile(hist, 0.9))}`
        : 'none yet';
    barChart($('#chart-ttft', root), { title: 'Time to first token', buckets: ttft.buckets, summary: summary(ttft) });
    barChart($('#chart-itl', root), { title: 'Inter-token latency', buckets: itl.buckets, summary: summary(itl) });
  }

  async function poll() {
    let samples;
    try {
      samples = parsePrometheus(await (await api('metrics')).text());
      note.textContent = '';
    } catch (err) {
      note.textContent = err.message;
      return;
    }
    const models = labelValues(samples, 'model_name');
    syncModels(models);
    const match = select.value ? { model_name: select.value } : {};
    sample(samples, match, await chatModels(models));
    render(samples, match);
  }

  select.addEventListener('change', () => {
    history = [];
    previous = null;
    poll();
  });

  return {
    show() {
      poll();
      timer ??= setInterval(poll, POLL_MS);
    },
    hide() {
      clearInterval(timer);
      timer = null;
    },
  };
}
