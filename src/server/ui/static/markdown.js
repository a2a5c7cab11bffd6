/**
 * Markdown for model output, rendered safely: the parser builds a tree of plain objects ({ tag, attrs, children }
 * and strings), never HTML, and toDom() turns strings into text nodes. So `<script>` or `<img onerror=...>` in an
 * answer shows as those characters. Only the tags in TAGS are produced, with three attributes: a link's http(s) or
 * mailto href, a code block's language class and an ordered list's start number.
 */

export const TAGS = new Set([
  'p',
  'h1',
  'h2',
  'h3',
  'h4',
  'h5',
  'h6',
  'pre',
  'code',
  'strong',
  'em',
  'del',
  'a',
  'ul',
  'ol',
  'li',
  'blockquote',
  'hr',
  'br',
  'table',
  'thead',
  'tbody',
  'tr',
  'th',
  'td',
]);

const el = (tag, children = [], attrs = undefined) => (attrs ? { tag, attrs, children } : { tag, children });

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([\w+#.-]*)/;
const HEADING = /^ {0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$/;
const RULE = /^ {0,3}([-*_])(?:\s*\1){2,}\s*$/;
const QUOTE = /^ {0,3}>\s?(.*)$/;
const ITEM = /^( {0,3})([-*+]|\d{1,9}[.)])(\s+)(.*)$/;
const TABLE_RULE = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;

/** The tree of `text`. An unclosed code fence runs to the end, so a half-streamed answer renders as it will. */
export function parseMarkdown(text) {
  return blocks(text.replace(/\r\n?/g, '\n').split('\n'));
}

function startsBlock(line) {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) || ITEM.test(line);
}

function blocks(lines) {
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    let m;
    if (!line.trim()) {
      i++;
    } else if ((m = FENCE.exec(line))) {
      const body = [];
      const close = new RegExp(`^ {0,3}${m[1][0]}{${m[1].length},}\\s*$`);
      for (i++; i < lines.length && !close.test(lines[i]); i++) body.push(lines[i]);
      i++;
      out.push(el('pre', [el('code', [body.join('\n')], m[2] ? { class: `language-${m[2]}` } : undefined)]));
    } else if ((m = HEADING.exec(line))) {
      out.push(el(`h${m[1].length}`, inline(m[2])));
      i++;
    } else if (RULE.test(line)) {
      out.push(el('hr'));
      i++;
    } else if (QUOTE.test(line)) {
      const body = [];
      for (; i < lines.length && (m = QUOTE.exec(lines[i])); i++) body.push(m[1]);
      out.push(el('blockquote', blocks(body)));
    } else if (ITEM.test(line)) {
      i = list(lines, i, out);
    } else if (line.includes('|') && TABLE_RULE.test(lines[i + 1] ?? '') && lines[i + 1].includes('-')) {
      i = table(lines, i, out);
    } else {
      const para = [];
      for (; i < lines.length && lines[i].trim() && (para.length === 0 || !startsBlock(lines[i])); i++) {
        para.push(lines[i].trim());
      }
      out.push(el('p', inline(para.join('\n'))));
    }
  }
  return out;
}

const indentOf = (line) => line.length - line.trimStart().length;

/** A run of items of one kind; an item owns the indented lines below it (nested lists, code, paragraphs). */
function list(lines, i, out) {
  const ordered = /\d/.test(ITEM.exec(lines[i])[2]);
  const items = [];
  const start = Number.parseInt(ITEM.exec(lines[i])[2], 10);
  for (;;) {
    const m = ITEM.exec(lines[i] ?? '');
    if (!m || /\d/.test(m[2]) !== ordered) break;
    const width = m[1].length + m[2].length + m[3].length;
    const body = [m[4]];
    for (i++; i < lines.length; i++) {
      const l = lines[i];
      if (!l.trim()) {
        // A blank line ends the item unless indented content follows it.
        if (indentOf(lines[i + 1] ?? '') < 2 || !lines[i + 1].trim()) break;
        body.push('');
      } else if (indentOf(l) >= 2) {
        body.push(l.slice(Math.min(width, indentOf(l))));
      } else if (startsBlock(l)) {
        break;
      } else {
        body.push(l.trim());
      }
    }
    const content = blocks(body);
    // A tight item is one paragraph: its text goes straight into the <li>.
    items.push(el('li', content[0]?.tag === 'p' ? [...content[0].children, ...content.slice(1)] : content));
    // Items separated by blank lines still make one list.
    let next = i;
    while (next < lines.length && !lines[next].trim()) next++;
    if (ITEM.test(lines[next] ?? '')) i = next;
  }
  out.push(el(ordered ? 'ol' : 'ul', items, ordered && start !== 1 ? { start } : undefined));
  return i;
}

const cells = (line) =>
  line
    .trim()
    .replace(/^\|/, '')
    .replace(/(?<!\\)\|$/, '')
    .split(/(?<!\\)\|/)
    .map((c) => c.trim());

function table(lines, i, out) {
  const head = cells(lines[i]);
  const rows = [];
  for (i += 2; i < lines.length && lines[i].includes('|') && lines[i].trim(); i++) rows.push(cells(lines[i]));
  out.push(
    el('table', [
      el('thead', [
        el(
          'tr',
          head.map((c) => el('th', inline(c))),
        ),
      ]),
      el(
        'tbody',
        rows.map((r) =>
          el(
            'tr',
            head.map((_, k) => el('td', inline(r[k] ?? ''))),
          ),
        ),
      ),
    ]),
  );
  return i;
}

/** A link target that cannot run script or load from this page's origin by surprise; null otherwise. */
export function safeHref(url) {
  try {
    const u = new URL(url);
    return ['http:', 'https:', 'mailto:'].includes(u.protocol) ? u.href : null;
  } catch {
    return null;
  }
}

const ESCAPABLE = /[\\`*_{}[\]()#+\-.!~|>]/;
// Sticky (y): they match at lastIndex, so the text is never copied to look ahead.
const TICKS = /`+/y;
// Bounded lengths keep a text full of unclosed brackets linear to scan.
const LINK = /!?\[([^\]\n]{0,500})\]\(\s*<?([^\s()<>]{1,2000})>?(?:\s+"[^"\n]{0,500}")?\s*\)/y;
const AUTOLINK = /https?:\/\/[^\s<>()"']{0,2000}[^\s<>().,;:!?'"*_~]/y;
// Characters that may start something inline; the text between them is taken in one piece.
const SPECIAL = /[\\\n`[!h*_~]/g;
const EMPHASIS = [
  ['**', 'strong'],
  ['__', 'strong'],
  ['~~', 'del'],
  ['*', 'em'],
  ['_', 'em'],
];

const at = (re, text, i) => {
  re.lastIndex = i;
  return re.exec(text);
};

/** Where `d` may close emphasis: after a non-space; a single one not beside another; `_` not inside a word. */
function closersOf(text, d) {
  const out = [];
  for (let j = text.indexOf(d, 1); j !== -1; j = text.indexOf(d, j + 1)) {
    if (/\s/.test(text[j - 1])) continue;
    if (d.length === 1 && (text[j + 1] === d || text[j - 1] === d)) continue;
    if (d[0] === '_' && /\w/.test(text[j + d.length] ?? '')) continue;
    out.push(j);
  }
  return out;
}

/** The first of the sorted `positions` at or after `from`. */
function firstFrom(positions, from) {
  let lo = 0;
  let hi = positions.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (positions[mid] < from) lo = mid + 1;
    else hi = mid;
  }
  return positions[lo];
}

/**
 * The emphasis span opening at `i`, if it closes: { tag, inner, end }. Closing positions do not depend on where
 * the span opened, so they are found once per delimiter (`closers` caches them): a long answer full of unmatched
 * stars stays fast to re-render while it streams.
 */
function emphasis(text, i, closers) {
  for (const [d, tag] of EMPHASIS) {
    if (!text.startsWith(d, i)) continue;
    const open = i + d.length;
    if (/\s/.test(text[open] ?? ' ')) continue;
    // Underscores inside words (snake_case) are not emphasis.
    if (d[0] === '_' && /\w/.test(text[i - 1] ?? '')) continue;
    if (!closers.has(d)) closers.set(d, closersOf(text, d));
    const j = firstFrom(closers.get(d), open + 1);
    if (j !== undefined) return { tag, inner: text.slice(open, j), end: j + d.length };
  }
  return null;
}

function inline(text) {
  const out = [];
  const closers = new Map();
  let buf = '';
  const flush = () => {
    if (buf) out.push(buf);
    buf = '';
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    let m;
    if (c === '\\' && ESCAPABLE.test(text[i + 1] ?? '')) {
      buf += text[i + 1];
      i += 2;
    } else if (c === '\n') {
      flush();
      out.push(el('br'));
      i++;
    } else if (c === '`') {
      const run = at(TICKS, text, i)[0];
      const end = text.indexOf(run, i + run.length);
      if (end === -1) {
        buf += run;
        i += run.length;
        continue;
      }
      flush();
      out.push(el('code', [text.slice(i + run.length, end)]));
      i = end + run.length;
    } else if ((c === '[' || (c === '!' && text[i + 1] === '[')) && (m = at(LINK, text, i))) {
      const href = safeHref(m[2]);
      if (href) {
        flush();
        out.push(el('a', inline(m[1] || m[2]), { href }));
      } else {
        buf += m[0];
      }
      i += m[0].length;
    } else if (c === 'h' && !/\w/.test(text[i - 1] ?? '') && (m = at(AUTOLINK, text, i)) && safeHref(m[0])) {
      flush();
      out.push(el('a', [m[0]], { href: safeHref(m[0]) }));
      i += m[0].length;
    } else if ((m = emphasis(text, i, closers))) {
      flush();
      out.push(el(m.tag, inline(m.inner)));
      i = m.end;
    } else {
      SPECIAL.lastIndex = i + 1;
      const next = SPECIAL.exec(text)?.index ?? text.length;
      buf += text.slice(i, next);
      i = next;
    }
  }
  flush();
  return out;
}

/** DOM nodes for a tree from parseMarkdown: elements from TAGS, text as text nodes. */
export function toDom(nodes, doc = globalThis.document) {
  const fragment = doc.createDocumentFragment();
  for (const node of nodes) {
    if (typeof node === 'string') {
      fragment.append(doc.createTextNode(node));
      continue;
    }
    if (!TAGS.has(node.tag)) throw new Error(`markdown: unexpected tag ${node.tag}`);
    const e = doc.createElement(node.tag);
    if (node.tag === 'a') {
      e.setAttribute('href', node.attrs.href);
      e.setAttribute('rel', 'noopener noreferrer');
      e.setAttribute('target', '_blank');
    } else if (node.tag === 'code' && node.attrs) {
      e.setAttribute('class', node.attrs.class);
    } else if (node.tag === 'ol' && node.attrs) {
      e.setAttribute('start', String(node.attrs.start));
    }
    e.append(toDom(node.children, doc));
    fragment.append(e);
  }
  return fragment;
}
