import { h } from './dom.js';

/**
 * A modal <dialog> with `content` and buttons; resolves with the chosen button's value, or null on Cancel / Esc.
 * The confirming button comes first in the form, so Enter in a text field chooses it.
 */
function modal({ title, content, confirm, danger = false }) {
  return new Promise((resolve) => {
    const form = h(
      'form',
      {},
      h('h2', {}, title),
      content,
      h(
        'div',
        { class: 'dialog-buttons' },
        h('button', { type: 'submit', class: danger ? 'danger' : 'primary' }, confirm),
        h('button', { type: 'button', onclick: () => dialog.close() }, 'Cancel'),
      ),
    );
    const dialog = h('dialog', { 'aria-label': title }, form);
    let result = null;
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      result = new FormData(form).get('value') ?? true;
      dialog.close();
    });
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(result);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/**
 * Asks for one line of text; resolves to it, or null when cancelled.
 * @param {{ title: string, message?: string, label: string, value?: string, type?: string, confirm?: string }} spec
 */
export function askText({ title, message, label, value = '', type = 'text', confirm = 'OK' }) {
  const input = h('input', { name: 'value', type, value, required: true, autocomplete: 'off' });
  const content = [message ? h('p', { class: 'dialog-message' }, message) : null, h('label', {}, label, input)];
  return modal({ title, content, confirm });
}

/** Asks to confirm something that cannot be undone; resolves to true or false. */
export async function confirmAction({ title, message, confirm }) {
  return (await modal({ title, content: h('p', {}, message), confirm, danger: true })) !== null;
}
