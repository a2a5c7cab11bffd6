import { changeKey, getJson, onKeyNeeded, setKeyPrompt } from './api.js';
import { chatPage } from './chat.js';
import { askText } from './dialogs.js';
import { $ } from './dom.js';
import { metricsPage } from './metrics.js';
import { modelsPage } from './models.js';

/** The page's entry: three pages behind #chat, #models and #metrics, and the API key dialog. */

setKeyPrompt((message) =>
  askText({
    title: 'API key required',
    message: `${message}. The key is kept for this tab only.`,
    label: 'API key',
    type: 'password',
    confirm: 'Use key',
  }),
);

const chat = chatPage($('#page-chat'));
const pages = {
  chat,
  models: modelsPage($('#page-models'), {
    chatWith: async (model) => {
      location.hash = '#chat';
      await chat.useModel(model);
    },
  }),
  metrics: metricsPage($('#page-metrics')),
};
let shown = null;

function route() {
  const name = location.hash.slice(1) in pages ? location.hash.slice(1) : 'chat';
  if (shown && shown !== name) pages[shown].hide();
  for (const key of Object.keys(pages)) $(`#page-${key}`).hidden = key !== name;
  for (const link of document.querySelectorAll('nav a')) {
    if (link.getAttribute('data-page') === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  shown = name;
  pages[name].show();
}

const keyButton = $('#change-key');
onKeyNeeded(() => {
  keyButton.hidden = false;
});
keyButton.addEventListener('click', async () => {
  if (await changeKey()) route();
});

window.addEventListener('hashchange', route);
route();
getJson('api/version').then(
  (v) => {
    $('#server-version').textContent = `v${v.version}`;
  },
  () => {},
);
