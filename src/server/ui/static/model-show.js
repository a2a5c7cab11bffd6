import { postJson } from './api.js';

/** What /api/show tells of each model, asked once per model (a failed ask is asked again next time). */
const shown = new Map();

function show(model) {
  if (!shown.has(model)) {
    const answer = postJson('api/show', { model });
    shown.set(model, answer);
    answer.catch(() => shown.delete(model));
  }
  return shown.get(model);
}

/** Whether a model has a chat template; without one, chat continues plain text. */
export async function hasChatTemplate(model) {
  return Boolean((await show(model)).template);
}

/** Whether a model generates text (Ollama's "completion" capability): embedding and reranking models do not. */
export async function canChat(model) {
  return ((await show(model)).capabilities ?? []).includes('completion');
}

/** The models of `names` that generate text, in their order; one /api/show cannot tell of (removed since) is left out. */
export async function chatModels(names) {
  const can = await Promise.all(names.map((name) => canChat(name).catch(() => false)));
  return names.filter((_, k) => can[k]);
}
