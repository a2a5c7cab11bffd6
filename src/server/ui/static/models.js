import { getJson, postJson } from './api.js';
import { askText, confirmAction } from './dialogs.js';
import { $, formatBytes, h } from './dom.js';
import { chatModels } from './model-show.js';
import { pullForm } from './pull.js';

// Loaded models and their keep-alive change by themselves; the table is refreshed while it is shown.
const REFRESH_MS = 5000;

/** When a loaded model unloads: a time today, a date later, or "never" (the server says centuries ahead). */
function unloadsAt(expiresAt) {
  const when = new Date(expiresAt);
  if (when.getTime() - Date.now() > 180 * 24 * 3600_000) return 'never';
  const today = when.toDateString() === new Date().toDateString();
  return today ? when.toLocaleTimeString() : when.toLocaleString();
}

/**
 * The models page: what `pagoda list` and `ps` show, in one table, with chat (for models that generate text), unload,
 * copy and delete for each model; pulling from the Hub and creating from a Modelfile below it.
 */
export function modelsPage(root, { chatWith }) {
  const tbody = $('#model-table tbody', root);
  const note = $('#models-note', root);
  let timer = null;

  const act = (what) => async () => {
    note.textContent = '';
    try {
      await what();
    } catch (err) {
      note.textContent = err.message;
    }
    await refresh();
  };

  const unload = (name) =>
    act(async () => {
      await postJson('api/generate', { model: name, keep_alive: 0 });
      note.textContent = `${name} unloaded.`;
    });

  const copy = (name) =>
    act(async () => {
      const destination = await askText({
        title: `Copy ${name}`,
        label: 'New name',
        value: `${name}-copy`,
        confirm: 'Copy',
      });
      if (!destination) return;
      await postJson('api/copy', { source: name, destination });
      note.textContent = `Copied ${name} to ${destination}.`;
    });

  const remove = (name) =>
    act(async () => {
      const message = `${name} is removed from the store (downloaded weights in the Hugging Face cache stay).`;
      if (!(await confirmAction({ title: `Delete ${name}?`, message, confirm: 'Delete' }))) return;
      await postJson('api/delete', { model: name }, 'DELETE');
      note.textContent = `Deleted ${name}.`;
    });

  function row(model, loaded, chat) {
    const name = model.name;
    const d = model.details ?? {};
    const button = (label, onclick, extra = {}) =>
      h('button', { type: 'button', onclick, 'aria-label': `${label} ${name}`, ...extra }, label);
    return h(
      'tr',
      { 'data-model': name },
      h('th', { scope: 'row' }, name),
      h('td', {}, d.family ?? ''),
      h('td', {}, d.parameter_size ?? ''),
      h('td', {}, d.quantization_level ?? ''),
      h('td', { class: 'num' }, formatBytes(model.size)),
      h('td', { class: 'loaded' }, loaded ? (loaded.size_vram ? 'GPU' : 'CPU') : 'no'),
      h('td', { class: 'num' }, loaded ? formatBytes(loaded.size) : ''),
      h('td', { class: 'num' }, loaded ? String(loaded.context_length) : ''),
      h('td', {}, loaded ? unloadsAt(loaded.expires_at) : ''),
      h(
        'td',
        { class: 'actions' },
        chat ? button('Chat', () => chatWith(name)) : null,
        loaded ? button('Unload', unload(name)) : null,
        button('Copy', copy(name)),
        button('Delete', remove(name), { class: 'danger' }),
      ),
    );
  }

  let shown = '';
  async function refresh() {
    try {
      const [tags, ps] = await Promise.all([getJson('api/tags'), getJson('api/ps')]);
      // Rebuilding an unchanged table would take the keyboard focus away from its buttons.
      const seen = JSON.stringify([tags, ps]);
      if (seen === shown) return;
      shown = seen;
      const loaded = new Map(ps.models.map((m) => [m.name, m]));
      const chat = new Set(await chatModels(tags.models.map((m) => m.name)));
      tbody.replaceChildren(...tags.models.map((m) => row(m, loaded.get(m.name), chat.has(m.name))));
      if (!tags.models.length) tbody.append(h('tr', {}, h('td', { colspan: 10 }, 'No models yet: pull one below.')));
    } catch (err) {
      note.textContent = err.message;
    }
  }

  pullForm(root, { onPulled: refresh });

  $('#create-form', root).addEventListener('submit', async (event) => {
    event.preventDefault();
    const status = $('#create-status', root);
    const model = $('#create-name', root).value.trim();
    status.textContent = `Creating ${model}…`;
    try {
      await postJson('api/create', { model, modelfile: $('#create-modelfile', root).value, stream: false });
      status.textContent = `Created ${model}.`;
    } catch (err) {
      status.textContent = err.message;
    }
    await refresh();
  });

  return {
    show() {
      refresh();
      timer ??= setInterval(refresh, REFRESH_MS);
    },
    hide() {
      clearInterval(timer);
      timer = null;
    },
  };
}
