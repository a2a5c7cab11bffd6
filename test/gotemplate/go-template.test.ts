import assert from 'node:assert/strict';
import { test } from 'node:test';
import { executeTemplate } from '../../src/gotemplate/execute.ts';
import { parseTemplate } from '../../src/gotemplate/parse.ts';

const render = (src: string, data: unknown = {}) => executeTemplate(parseTemplate(src), data);
const msgs = [
  { Role: 'system', Content: 'S' },
  { Role: 'user', Content: 'U' },
  { Role: 'assistant', Content: 'A' },
];

test('fields, dot, $ and trim markers', () => {
  assert.equal(render('a  {{- .X -}}  b', { X: 1 }), 'a1b');
  assert.equal(render('{{ .A.B }}', { A: { B: 'deep' } }), 'deep');
  assert.equal(render('{{ with .A }}{{ .B }}{{ $.T }}{{ end }}', { A: { B: 'x' }, T: 'y' }), 'xy');
  assert.equal(render('{{ .Missing }}|{{ .A.Missing }}', { A: {} }), '|');
  assert.equal(render('{{- /* a comment */ -}}\n x'), 'x');
  assert.equal(render('{{ 3 }}{{ -2 }}{{ true }}{{ "q\\n" }}{{ `raw\\n` }}'), '3-2trueq\nraw\\n');
});

test('if / else if / else and truthiness', () => {
  const t = '{{ if eq .R "a" }}A{{ else if eq .R "b" }}B{{ else if .R }}other{{ else }}none{{ end }}';
  assert.deepEqual(
    ['a', 'b', 'c', ''].map((R) => render(t, { R })),
    ['A', 'B', 'other', 'none'],
  );
  assert.equal(render('{{ if .L }}y{{ else }}n{{ end }}{{ if .M }}y{{ else }}n{{ end }}', { L: [], M: {} }), 'nn');
  assert.equal(render('{{ if and .A (not .B) }}y{{ end }}{{ or .B .C "d" }}', { A: 1, B: 0, C: '' }), 'yd');
  assert.equal(render('{{ and 1 0 2 }}{{ or 0 "" }}'), '0');
  assert.equal(render('{{ if ne 1 2 }}{{ eq 1 3 2 1 }}{{ end }}'), 'true');
  assert.equal(render('{{ if lt 1 2 }}lt{{ end }}{{ if ge "b" "a" }}ge{{ end }}'), 'ltge');
});

test('range with index and element, else, break and continue', () => {
  assert.equal(render('{{ range .M }}{{ .Role }},{{ end }}', { M: msgs }), 'system,user,assistant,');
  assert.equal(render('{{ range $i, $m := .M }}{{ $i }}{{ $m.Content }}{{ end }}', { M: msgs }), '0S1U2A');
  assert.equal(render('{{ range $m := .M }}{{ $m.Role }} {{ end }}', { M: msgs.slice(0, 1) }), 'system ');
  assert.equal(render('{{ range .M }}x{{ else }}empty{{ end }}', { M: [] }), 'empty');
  assert.equal(
    render(
      '{{ range .M }}{{ if eq .Role "user" }}{{ continue }}{{ end }}{{ if eq .Role "assistant" }}{{ break }}{{ end }}{{ .Content }}{{ end }}',
      { M: msgs },
    ),
    'S',
  );
  assert.equal(render('{{ range 3 }}{{ . }}{{ end }}'), '012');
});

test('len, slice, index, printf and pipelines', () => {
  const data = { M: msgs };
  assert.equal(render('{{ len .M }} {{ len "abc" }}', data), '3 3');
  assert.equal(render('{{ range slice .M 1 }}{{ .Role }} {{ end }}', data), 'user assistant ');
  assert.equal(render('{{ len (slice $.M 2) }}', data), '1');
  assert.equal(render('{{ (index .M 1).Content }}{{ index .M 2 "Role" }}', data), 'Uassistant');
  assert.equal(render('{{ printf "%s-%d-%q-%%" "a" 7 "b" }}'), 'a-7-"b"-%');
  assert.equal(render('{{ .X | printf "<%s>" }}', { X: 'v' }), '<v>');
  assert.equal(render('{{ json .X }}', { X: { a: [1] } }), '{"a":[1]}');
  // The "last message" test Ollama's templates use.
  assert.equal(
    render('{{ range $i, $_ := .M }}{{ if eq (len (slice $.M $i)) 1 }}last={{ .Content }}{{ end }}{{ end }}', data),
    'last=A',
  );
});

test('variables: declared in a block, assigned from inner blocks, gone after end', () => {
  assert.equal(
    render('{{ $s := "" }}{{ range .M }}{{ if eq .Role "system" }}{{ $s = .Content }}{{ end }}{{ end }}[{{ $s }}]', {
      M: msgs,
    }),
    '[S]',
  );
  assert.throws(() => render('{{ if true }}{{ $x := 1 }}{{ end }}{{ $x }}'), /template:1: undefined variable "\$x"/);
});

test('syntax errors name the line', () => {
  assert.throws(() => parseTemplate('a\n{{ if .X }}'), /template:2: unclosed \{\{if\}\}/);
  assert.throws(() => parseTemplate('{{ end }}'), /template:1: unexpected \{\{end\}\}/);
  assert.throws(() => parseTemplate('x\n\n{{ .X'), /template:3: unclosed action/);
  assert.throws(() => parseTemplate('{{ template "x" }}'), /not supported/);
  assert.throws(() => parseTemplate('{{ break }}'), /outside \{\{range\}\}/);
  // As Go's parser: an undefined function fails when the template is parsed, whether or not it would run.
  assert.throws(
    () => parseTemplate('\n{{ if false }}{{ nosuch 1 }}{{ end }}'),
    /template:2: function "nosuch" not defined/,
  );
  assert.throws(() => render('{{ index .L 5 }}', { L: [] }), /index out of range/);
});
