import { messageView } from './chat-view.js';
import { Conversations } from './conversations.js';
import { $, h } from './dom.js';
import { AnswerClock, answer, modelNames } from './generate.js';
import { chatModels, hasChatTemplate } from './model-show.js';

/**
 * The chat page: conversations (kept in localStorage) on the left, the thread and the composer in the middle, the
 * model, system prompt and sampling options of the open conversation on the right.
 */
export function chatPage(root) {
  const store = new Conversations();
  const list = $('#conversation-list', root);
  const thread = $('#messages', root);
  const prompt = $('#prompt', root);
  const sendButton = $('#send', root);
  const stopButton = $('#stop', root);
  const modelSelect = $('#model', root);
  const modelNote = $('#model-note', root);
  const system = $('#system', root);
  const optionInputs = [...root.querySelectorAll('[data-option]')];
  let current = null;
  let running = null;

  const formSettings = () => ({
    model: modelSelect.value,
    system: system.value,
    options: Object.fromEntries(optionInputs.map((i) => [i.dataset.option, i.value === '' ? '' : Number(i.value)])),
  });

  // Every model the server serves (the picker offers those that can chat), and why the picker is empty when it is.
  let served = new Set();
  let modelsProblem = '';

  async function noteTemplate() {
    const model = modelSelect.value;
    let note = model ? '' : modelsProblem;
    try {
      if (model && !(await hasChatTemplate(model))) {
        note = `${model} has no chat template: each message is continued as plain text.`;
      }
    } catch (err) {
      note = err.message;
    }
    if (model === modelSelect.value) modelNote.textContent = note;
  }

  function showSettings() {
    const { model, system: text, options } = current.settings;
    const offered = [...modelSelect.options].some((o) => o.value === model);
    // A served model that cannot chat (embedding, reranking) is never chosen: the picker keeps a model that can.
    if (model && !offered && !served.has(model)) {
      modelSelect.append(h('option', { value: model }, `${model} (not served)`));
    }
    if (model && (offered || !served.has(model))) modelSelect.value = model;
    system.value = text ?? '';
    for (const input of optionInputs) input.value = options?.[input.dataset.option] ?? '';
    noteTemplate();
  }

  function saveSettings() {
    current.settings = formSettings();
    store.save();
    noteTemplate();
  }

  // The thread follows a streaming answer unless the reader has scrolled up.
  let following = true;
  thread.addEventListener('scroll', () => {
    following = thread.scrollHeight - thread.scrollTop - thread.clientHeight < 40;
  });
  function stickToBottom() {
    if (following) thread.scrollTop = thread.scrollHeight;
  }

  /** Renders the open conversation; returns the view of its last message (the one that may be streaming). */
  function renderThread() {
    const messages = current.messages;
    const lastAnswer = messages.at(-1)?.role === 'assistant' && !running ? messages.length - 1 : -1;
    const views = messages.map((m, k) =>
      messageView(m, { onRegenerate: k === lastAnswer ? regenerate : undefined, onRender: stickToBottom }),
    );
    following = true;
    thread.replaceChildren(...views.map((v) => v.element));
    if (!messages.length) {
      thread.append(h('p', { class: 'empty' }, 'Ask something, or give a text for the model to continue.'));
    }
    stickToBottom();
    return views.at(-1);
  }

  function renderList() {
    list.replaceChildren(
      ...store.list.map((c) => {
        const title = c.title || 'New chat';
        return h(
          'li',
          { class: c === current ? 'current' : '' },
          h(
            'button',
            { type: 'button', class: 'open', 'aria-current': c === current && 'true', onclick: () => open(c) },
            title,
          ),
          h(
            'button',
            {
              type: 'button',
              class: 'delete',
              'aria-label': `Delete conversation: ${title}`,
              onclick: () => remove(c),
            },
            '×',
          ),
        );
      }),
    );
  }

  function open(conversation) {
    running?.abort();
    current = conversation;
    store.currentId = conversation.id;
    showSettings();
    renderThread();
    renderList();
  }

  function newChat() {
    // An untouched conversation is reused rather than piling up empty ones.
    const empty = store.list.find((c) => c.messages.length === 0);
    if (empty) {
      empty.settings = formSettings();
      store.save();
    }
    open(empty ?? store.create(formSettings()));
    prompt.focus();
  }

  function remove(conversation) {
    if (conversation === current) running?.abort();
    store.remove(conversation.id);
    if (conversation === current) open(store.list[0] ?? store.create(formSettings()));
    else renderList();
  }

  function setBusy(busy) {
    sendButton.hidden = busy;
    stopButton.hidden = !busy;
  }

  async function respond() {
    const conversation = current;
    const request = { ...conversation.settings, messages: conversation.messages.slice() };
    const message = { role: 'assistant', content: '', model: request.model };
    conversation.messages.push(message);
    const controller = new AbortController();
    running = controller;
    setBusy(true);
    const view = renderThread();
    const clock = new AnswerClock();
    let done = null;
    try {
      for await (const piece of answer(request, controller.signal)) {
        if (piece.done) {
          done = piece.done;
        } else {
          clock.piece();
          message.content += piece.text;
          view.update();
        }
      }
    } catch (err) {
      if (controller.signal.aborted) message.stopped = true;
      else message.error = err.message;
    }
    if (done || clock.pieces) message.stats = clock.stats(done);
    running = null;
    setBusy(false);
    conversation.updatedAt = Date.now();
    store.save();
    if (conversation === current) renderThread();
    renderList();
    if (document.activeElement === document.body) prompt.focus();
  }

  function send() {
    const text = prompt.value;
    if (running || !text.trim() || !modelSelect.value) return;
    prompt.value = '';
    current.settings = formSettings();
    current.messages.push({ role: 'user', content: text });
    current.title ||= text.trim().replace(/\s+/g, ' ').slice(0, 60);
    store.list = [current, ...store.list.filter((c) => c !== current)];
    respond();
  }

  function regenerate() {
    if (running || current.messages.at(-1)?.role !== 'assistant') return;
    current.messages.pop();
    respond();
  }

  $('#composer', root).addEventListener('submit', (event) => {
    event.preventDefault();
    send();
  });
  prompt.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  root.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && running) {
      event.preventDefault();
      running.abort();
    }
  });
  stopButton.addEventListener('click', () => running?.abort());
  $('#new-chat', root).addEventListener('click', newChat);
  for (const input of [modelSelect, system, ...optionInputs]) input.addEventListener('change', saveSettings);

  /** Fills the model picker with the server's models that can chat, keeping the open conversation's choice. */
  async function refillModels() {
    try {
      const names = await modelNames();
      const chat = await chatModels(names);
      served = new Set(names);
      modelSelect.replaceChildren(...chat.map((name) => h('option', { value: name }, name)));
      if (!names.length) modelsProblem = 'The server has no models: pull one on the Models page.';
      else if (!chat.length)
        modelsProblem = 'No model here can chat (they embed or rerank): pull one on the Models page.';
      else modelsProblem = '';
    } catch (err) {
      modelsProblem = err.message;
    }
  }

  return {
    /** The first visit opens the last conversation, or starts one with the first model. */
    async show() {
      await refillModels();
      if (!current) open(store.get(store.currentId) ?? store.list[0] ?? store.create(formSettings()));
      else if (!running) showSettings();
    },
    hide() {},
    /** Chat with `model` (from the models page): the open conversation switches to it. */
    async useModel(model) {
      await this.show();
      modelSelect.value = model;
      saveSettings();
    },
  };
}
