import { api, ndjson } from './api.js';
import { $, formatBytes, h } from './dom.js';

/**
 * The pull form: POST /api/pull streams Ollama-style progress ({ status, digest, total, completed } per file);
 * the bar shows the bytes of all files so far, with a line per file.
 */
export function pullForm(root, { onPulled }) {
  const form = $('#pull-form', root);
  const bar = $('#pull-bar', root);
  const percent = $('#pull-percent', root);
  const status = $('#pull-status', root);
  const files = $('#pull-files', root);
  const button = $('button[type=submit]', form);

  function show(progress) {
    let total = 0;
    let completed = 0;
    for (const p of progress.values()) {
      total += p.total;
      completed += p.completed;
    }
    const value = total ? Math.floor((100 * completed) / total) : 0;
    bar.value = value;
    percent.textContent = `${value}%`;
    files.replaceChildren(
      ...[...progress].map(([file, p]) =>
        h('li', {}, `${file}: ${formatBytes(p.completed)} of ${formatBytes(p.total)}`),
      ),
    );
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const model = $('#pull-name', root).value.trim();
    const progress = new Map();
    $('#pull-progress', root).hidden = false;
    button.disabled = true;
    status.textContent = `Pulling ${model}…`;
    show(progress);
    try {
      const res = await api('api/pull', { method: 'POST', body: { model, stream: true } });
      for await (const e of ndjson(res)) {
        if (e.error) throw new Error(e.error);
        status.textContent = e.status;
        if (e.total) {
          progress.set(e.status.replace(/^pulling /, ''), { total: e.total, completed: e.completed ?? 0 });
          show(progress);
        }
        if (e.status === 'success') {
          status.textContent = `Pulled ${model}.`;
          onPulled();
        }
      }
    } catch (err) {
      status.textContent = err.message;
    }
    button.disabled = false;
  });
}
