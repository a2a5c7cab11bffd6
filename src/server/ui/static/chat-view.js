import { h } from './dom.js';
import { parseMarkdown, toDom } from './markdown.js';

// Re-rendering an answer's Markdown on every piece would be wasted work; a few times a second looks live.
const RENDER_EVERY_MS = 50;

function statsText(message) {
  const parts = [];
  const s = message.stats;
  if (s) {
    parts.push(`${s.tokens} tokens`);
    if (s.perSecond !== null) parts.push(`${s.perSecond.toFixed(1)} tokens/s`);
    if (s.ttftMs !== null) parts.push(`first token after ${Math.round(s.ttftMs)} ms`);
  }
  if (message.stopped) parts.push('stopped');
  return parts.join(' · ');
}

function addCopyButtons(body) {
  if (!navigator.clipboard) return;
  for (const pre of body.querySelectorAll('pre')) {
    const copy = () => navigator.clipboard.writeText(pre.querySelector('code').textContent);
    pre.prepend(h('button', { type: 'button', class: 'copy', onclick: copy, 'aria-label': 'Copy code' }, 'Copy'));
  }
}

/**
 * One message of the thread. An answer's text is Markdown, rendered by markdown.js (never as HTML); the user's
 * text is shown as typed. `update()` re-renders soon (while it streams); `onRender` follows each render.
 * @param {{ role: string, content: string, model?: string, stats?: object, stopped?: boolean, error?: string }} message
 * @param {{ onRegenerate?: () => void, onRender?: () => void }} [actions]
 */
export function messageView(message, { onRegenerate, onRender } = {}) {
  const body = h('div', { class: 'body' });
  const meta = h('div', { class: 'meta' });
  const who = message.role === 'user' ? 'You' : (message.model ?? 'assistant');
  const element = h('article', { class: `message ${message.role}` }, h('header', {}, who), body, meta);
  let scheduled = false;
  const render = () => {
    scheduled = false;
    if (message.role === 'user') {
      body.textContent = message.content;
    } else {
      body.replaceChildren(toDom(parseMarkdown(message.content)));
      addCopyButtons(body);
    }
    meta.replaceChildren(
      ...[
        h('span', { class: 'stats' }, statsText(message)),
        message.error && h('span', { class: 'error', role: 'alert' }, message.error),
        onRegenerate && h('button', { type: 'button', class: 'regenerate', onclick: onRegenerate }, 'Regenerate'),
      ].filter(Boolean),
    );
    onRender?.();
  };
  render();
  return {
    element,
    update() {
      if (!scheduled) setTimeout(render, RENDER_EVERY_MS);
      scheduled = true;
    },
  };
}
