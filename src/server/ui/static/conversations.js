/**
 * Conversations kept in the browser's localStorage: [{ id, title, settings: { model, system, options }, messages:
 * [{ role, content, model?, stats?, stopped?, error? }], updatedAt }], newest first.
 */

const KEY = 'pagoda.conversations';
const CURRENT = 'pagoda.currentConversation';

const newId = () => `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

export class Conversations {
  constructor(storage = localStorage) {
    this.storage = storage;
    this.list = [];
    try {
      const stored = JSON.parse(storage.getItem(KEY) ?? '[]');
      if (Array.isArray(stored)) this.list = stored.filter((c) => c && Array.isArray(c.messages));
    } catch {
      // Unreadable storage starts afresh rather than breaking the page.
    }
  }

  get currentId() {
    return this.storage.getItem(CURRENT);
  }

  set currentId(id) {
    this.storage.setItem(CURRENT, id);
  }

  get(id) {
    return this.list.find((c) => c.id === id) ?? null;
  }

  create(settings) {
    const conversation = { id: newId(), title: '', settings: structuredClone(settings), messages: [], updatedAt: 0 };
    this.list.unshift(conversation);
    this.save();
    return conversation;
  }

  remove(id) {
    this.list = this.list.filter((c) => c.id !== id);
    this.save();
  }

  /** Writes the list; when storage is full, the oldest conversations go first. */
  save() {
    for (;;) {
      try {
        this.storage.setItem(KEY, JSON.stringify(this.list));
        return;
      } catch (err) {
        if (this.list.length <= 1) throw err;
        this.list.pop();
      }
    }
  }
}
