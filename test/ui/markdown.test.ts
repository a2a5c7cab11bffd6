import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseMarkdown, safeHref, TAGS } from '../../src/server/ui/static/markdown.js';

type Node = string | { tag: string; attrs?: Record<string, unknown>; children: Node[] };

/** The tree back as HTML-like text, for compact assertions (text escaped as a browser would show it). */
function show(nodes: Node[]): string {
  return nodes
    .map((n) => {
      if (typeof n === 'string') return n.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
      const attrs = Object.entries(n.attrs ?? {})
        .map(([k, v]) => ` ${k}="${v}"`)
        .join('');
      return `<${n.tag}${attrs}>${show(n.children)}</${n.tag}>`;
    })
    .join('');
}

const md = (text: string) => show(parseMarkdown(text) as Node[]);

const ALLOWED_ATTRS: Record<string, string[]> = { a: ['href'], code: ['class'], ol: ['start'] };

/** Every element is one of TAGS with only its allowed attributes; links are http(s) or mailto. */
function assertSafe(nodes: Node[], source: string): void {
  for (const n of nodes) {
    if (typeof n === 'string') continue;
    assert.ok(TAGS.has(n.tag), `${n.tag} from ${JSON.stringify(source)}`);
    for (const key of Object.keys(n.attrs ?? {})) assert.ok(ALLOWED_ATTRS[n.tag]?.includes(key), `${n.tag}[${key}]`);
    if (n.tag === 'a') assert.match(String(n.attrs!.href), /^(https?:|mailto:)/);
    if (n.tag === 'code' && n.attrs) assert.match(String(n.attrs.class), /^language-[\w+#.-]+$/);
    if (n.tag === 'ol' && n.attrs) assert.ok(Number.isInteger(n.attrs.start));
    assertSafe(n.children, source);
  }
}

test('blocks: headings, paragraphs with line breaks, rules, quotes, fenced code', () => {
  assert.equal(md('# Title\n## Sub ##'), '<h1>Title</h1><h2>Sub</h2>');
  assert.equal(md('one\ntwo\n\nthree'), '<p>one<br></br>two</p><p>three</p>');
  assert.equal(md('a\n\n---\n\nb'), '<p>a</p><hr></hr><p>b</p>');
  assert.equal(md('> quoted\n> **more**'), '<blockquote><p>quoted<br></br><strong>more</strong></p></blockquote>');
  assert.equal(
    md('```python\nprint("<hi>")\n\n  x = 1\n```\nafter'),
    '<pre><code class="language-python">print("&lt;hi&gt;")\n\n  x = 1</code></pre><p>after</p>',
  );
  // A fence still open (the answer is streaming) runs to the end.
  assert.equal(md('~~~\ncode *not emphasis*'), '<pre><code>code *not emphasis*</code></pre>');
});

test('lists: bullets and numbers, nesting, loose items, a start other than 1', () => {
  assert.equal(md('- a\n- b'), '<ul><li>a</li><li>b</li></ul>');
  assert.equal(md('1. a\n2. b\n\n3. c'), '<ol><li>a</li><li>b</li><li>c</li></ol>');
  assert.equal(md('3) c\n4) d'), '<ol start="3"><li>c</li><li>d</li></ol>');
  assert.equal(md('- a\n  - a1\n  - a2\n- b'), '<ul><li>a<ul><li>a1</li><li>a2</li></ul></li><li>b</li></ul>');
  assert.equal(
    md('1. step\n   ```sh\n   ls\n   ```\n2. done'),
    '<ol><li>step<pre><code class="language-sh">ls</code></pre></li><li>done</li></ol>',
  );
  assert.equal(md('- a\ncontinued\n\npara'), '<ul><li>a<br></br>continued</li></ul><p>para</p>');
  assert.equal(md('- a\n1. b'), '<ul><li>a</li></ul><ol><li>b</li></ol>');
});

test('tables', () => {
  assert.equal(
    md('| a | b |\n|:--|--:|\n| 1 | `x\\|y` |\n| 2 |'),
    '<table><thead><tr><th>a</th><th>b</th></tr></thead><tbody><tr><td>1</td><td><code>x\\|y</code></td></tr>' +
      '<tr><td>2</td><td></td></tr></tbody></table>',
  );
  assert.equal(md('a | b\nno rule'), '<p>a | b<br></br>no rule</p>');
});

test('inline: emphasis, code spans, escapes, links; snake_case and lone stars stay text', () => {
  assert.equal(
    md('**b** __b__ *i* _i_ ~~s~~'),
    '<p><strong>b</strong> <strong>b</strong> <em>i</em> <em>i</em> <del>s</del></p>',
  );
  assert.equal(md('*a **b** c*'), '<p><em>a <strong>b</strong> c</em></p>');
  assert.equal(md('use `a*b*c` and ``x ` y``'), '<p>use <code>a*b*c</code> and <code>x ` y</code></p>');
  assert.equal(md('snake_case_name and 2 * 3 * 4'), '<p>snake_case_name and 2 * 3 * 4</p>');
  assert.equal(md('\\*not\\* \\`code\\`'), '<p>*not* `code`</p>');
  assert.equal(md('unclosed **bold and `code'), '<p>unclosed **bold and `code</p>');
  assert.equal(md('[site](https://example.com/a?b=1 "title")'), '<p><a href="https://example.com/a?b=1">site</a></p>');
  assert.equal(
    md('see https://example.com/x.'),
    '<p>see <a href="https://example.com/x">https://example.com/x</a>.</p>',
  );
  assert.equal(md('![alt](https://example.com/i.png)'), '<p><a href="https://example.com/i.png">alt</a></p>');
});

test('HTML and script in model output come out as text; unsafe links are not links', () => {
  assert.equal(md('<script>alert(1)</script>'), '<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>');
  assert.equal(md('<img src=x onerror="alert(1)">'), '<p>&lt;img src=x onerror="alert(1)"&gt;</p>');
  assert.equal(md('# <b onclick="x()">hi</b>'), '<h1>&lt;b onclick="x()"&gt;hi&lt;/b&gt;</h1>');
  for (const href of [
    'javascript:alert(1)',
    'JaVaScRiPt:alert(1)',
    'data:text/html,<script>x</script>',
    'vbscript:x',
    '/relative',
    '//evil.example',
  ]) {
    assert.equal(safeHref(href), null, href);
    assert.doesNotMatch(md(`[x](${href})`), /<a /, href);
  }
  assert.equal(safeHref('mailto:a@b.example'), 'mailto:a@b.example');
});

test('any input parses to elements of the fixed set only (random Markdown-ish text)', () => {
  const pieces = [
    '*',
    '**',
    '_',
    '`',
    '```',
    '~~~',
    '#',
    '> ',
    '- ',
    '1. ',
    '|',
    '---',
    '[',
    '](',
    ')',
    'http://x.io',
    'javascript:',
    '<',
    '>',
    '"',
    '\\',
    '\n',
    '\n\n',
    '  ',
    'a',
    'word',
    '<script>',
    'onerror=',
  ];
  let seed = 7;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  for (let round = 0; round < 500; round++) {
    let text = '';
    const length = 1 + Math.floor(random() * 40);
    for (let k = 0; k < length; k++) text += pieces[Math.floor(random() * pieces.length)];
    assertSafe(parseMarkdown(text) as Node[], text);
  }
});
