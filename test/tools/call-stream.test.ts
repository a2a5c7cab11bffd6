import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CallEvent } from '../../src/tools/call-log.ts';
import {
  DEEPSEEK,
  FORCED_JSON,
  GLM45,
  GRANITE,
  GRANITE_20B_FC,
  HERMES,
  INTERNLM,
  KIMI_K2,
  LLAMA3_JSON,
  LLAMA4_PYTHONIC,
  MISTRAL,
  PHI4_MINI,
  PYTHONIC,
  TOOL_CALLS_BLOCK,
  type ToolCallFormat,
  ToolCallParser,
  toolCallFormatOf,
  XLAM,
} from '../../src/tools/tool-parser.ts';
import { mulberry32 } from '../../src/util/random.ts';

/** `text` cut into pieces of `size` characters, or (size 0) at random places. */
function pieces(text: string, size: number, seed = 1): string[] {
  const random = mulberry32(seed);
  const out: string[] = [];
  for (let at = 0; at < text.length; ) {
    const n = size || 1 + Math.floor(random() * 6);
    out.push(text.slice(at, at + n));
    at += n;
  }
  return out;
}

/** `text` through a parser in `parts`: the content, the events each push told, and the end. */
function run(format: ToolCallFormat, parts: string[], streamed = true) {
  const p = new ToolCallParser(format, streamed);
  let content = '';
  const pushed: CallEvent[][] = [];
  for (const part of parts) {
    const r = p.push(part);
    content += r.content;
    pushed.push(r.events);
  }
  const end = p.finish();
  return { content: content + end.content, pushed, events: [...pushed.flat(), ...end.events], end };
}

/** The events of each call in order, checked to be start, arguments, end; their arguments joined. */
function byCall(events: CallEvent[]) {
  const calls: { name: string; fragments: string[]; ended: boolean }[] = [];
  for (const e of events) {
    if (e.type === 'start') {
      assert.equal(e.index, calls.length, 'calls start in order, once');
      calls.push({ name: e.name, fragments: [], ended: false });
      continue;
    }
    const call = calls[e.index]!;
    assert.ok(call && !call.ended, `${e.type} of call ${e.index} after its start, before its end`);
    if (e.type === 'arguments') call.fragments.push(e.text);
    else {
      call.ended = true;
      assert.equal(e.call.argumentsJson, call.fragments.join(''));
      assert.deepEqual(e.call.arguments, JSON.parse(call.fragments.join('')));
    }
  }
  return calls;
}

const [b, sep, e] = ['<｜tool▁call▁begin｜>', '<｜tool▁sep｜>', '<｜tool▁call▁end｜>'];
const [kb, ka, ke] = ['<|tool_call_begin|>', '<|tool_call_argument_begin|>', '<|tool_call_end|>'];
/** Arguments whose strings hold braces, quotes, brackets, escapes and pairs of surrogates. */
const tricky =
  '{"q": "a {b} \\"c\\" [d] \\\\ e\\n", "u": "\\u00e9\\ud83d\\ude00 😀", "n": [1.50, -0, 2e2, {"x": null}], "ok": true}';
const trickyJson = JSON.stringify(JSON.parse(tricky));

/** Per format: a text with calls, and whether their arguments stream (JSON) or come whole. */
const cases: { label: string; format: ToolCallFormat; text: string; streams: boolean }[] = [
  {
    label: 'hermes',
    format: HERMES,
    text: `Let me check.<tool_call>\n{"name": "get_weather", "arguments": ${tricky}}\n</tool_call>\n<tool_call>\n{"name": "t", "arguments": {}}\n</tool_call>`,
    streams: true,
  },
  {
    label: 'llama 3 bare, parameters, ;',
    format: LLAMA3_JSON,
    text: `{"name": "get_weather", "parameters": ${tricky}}; {"parameters": {"a": 1}, "name": "t"}`,
    streams: true,
  },
  {
    label: 'llama 3 python tag',
    format: LLAMA3_JSON,
    text: `<|python_tag|>{"name": "get_weather", "parameters": ${tricky}}; {"name": "t", "parameters": {}}`,
    streams: true,
  },
  {
    label: 'mistral list',
    format: MISTRAL,
    text: `[TOOL_CALLS][{"name": "get_weather", "arguments": ${tricky}}, {"name": "t", "arguments": "{\\"a\\": 1}"}]`,
    streams: true,
  },
  {
    label: 'mistral name[ARGS]',
    format: MISTRAL,
    text: `Sure.[TOOL_CALLS]get_weather[ARGS]${tricky}[TOOL_CALLS]t[ARGS]{}`,
    streams: true,
  },
  {
    label: 'forced list',
    format: FORCED_JSON,
    text: `[{"name": "get_weather", "arguments": ${tricky}}, {"name": "t", "arguments": {}}]`,
    streams: true,
  },
  {
    label: "a Go template's list tag",
    format: toolCallFormatOf('…', '[TOOL_CALLS] [')!,
    text: `[TOOL_CALLS] [{"name": "get_weather", "arguments": ${tricky}}, {"name": "t", "arguments": {}}]`,
    streams: true,
  },
  {
    label: 'qwen3-coder',
    format: HERMES,
    text:
      'Sure.<tool_call>\n<function=get_weather>\n<parameter=city>\nPa}"ris\n</parameter>\n</function>\n</tool_call>' +
      '\n<tool_call>\n<function=t>\n</function>\n</tool_call>',
    streams: false,
  },
  {
    label: 'deepseek v3 / r1',
    format: DEEPSEEK,
    text: `Checking.<｜tool▁calls▁begin｜>${b}function${sep}get_weather\n\`\`\`json\n${tricky}\n\`\`\`${e}\n${b}function${sep}t\n\`\`\`json\n{}\n\`\`\`${e}<｜tool▁calls▁end｜>`,
    streams: true,
  },
  {
    label: 'deepseek v3.1',
    format: DEEPSEEK,
    text: `Checking.<｜tool▁calls▁begin｜>${b}get_weather${sep}${tricky}${e}${b}t${sep}{}${e}<｜tool▁calls▁end｜>`,
    streams: true,
  },
  {
    label: 'pythonic',
    format: PYTHONIC,
    text: '[get_weather(q="a {b} \\"c\\" )]", n=[1, (2, 3)], d={"k": None}), t()]',
    streams: false,
  },
  {
    label: 'llama 4 pythonic in its python tags',
    format: LLAMA4_PYTHONIC,
    text: '<|python_start|>[get_weather(q="<|python_end|> )]", n=[1, (2, 3)]), t()]<|python_end|>',
    streams: false,
  },
  {
    label: 'llama 4 pythonic bare',
    format: LLAMA4_PYTHONIC,
    text: '[get_weather(q="a {b}", n=[1, (2, 3)]), t()]',
    streams: false,
  },
  {
    label: 'phi-4-mini functools[…]',
    format: PHI4_MINI,
    text: `Sure.functools[{"name": "get_weather", "arguments": ${tricky}}, {"name": "t", "arguments": {}}]`,
    streams: true,
  },
  {
    label: 'granite <|tool_call|>',
    format: GRANITE,
    text: `<|tool_call|>[{"name": "get_weather", "arguments": ${tricky}}, {"name": "t", "arguments": {}}]`,
    streams: true,
  },
  {
    label: 'granite 3.1 <tool_call>',
    format: GRANITE,
    text: `Let me check.<tool_call>[{"name": "get_weather", "arguments": ${tricky}}, {"name": "t", "arguments": {}}]`,
    streams: true,
  },
  {
    label: 'granite bare list',
    format: GRANITE,
    text: ` [{"name": "get_weather", "arguments": ${tricky}}, {"name": "t", "arguments": {}}]`,
    streams: true,
  },
  {
    label: 'granite-20b-fc',
    format: GRANITE_20B_FC,
    text: `Checking.<function_call> {"name": "get_weather", "arguments": ${tricky}} <function_call> {"name": "t", "arguments": {}}`,
    streams: true,
  },
  {
    label: 'jamba <tool_calls> list',
    format: TOOL_CALLS_BLOCK,
    text: `Hm.<tool_calls>[{"name": "get_weather", "arguments": ${tricky}}, {"name": "t", "arguments": {}}]</tool_calls>`,
    streams: true,
  },
  {
    label: 'minimax <tool_calls> lines',
    format: TOOL_CALLS_BLOCK,
    text: `<tool_calls>\n{"name": "get_weather", "arguments": ${tricky}}\n{"name": "t", "arguments": {}}\n</tool_calls>`,
    streams: true,
  },
  {
    label: 'internlm',
    format: INTERNLM,
    text: `Checking.<|action_start|><|plugin|>\n{"name": "get_weather", "parameters": ${tricky}}<|action_end|><|action_start|><|plugin|>\n{"name": "t", "arguments": {}}<|action_end|>`,
    streams: true,
  },
  {
    label: 'xlam bare list',
    format: XLAM,
    text: `[{"name": "get_weather", "arguments": ${tricky}}, {"name": "t", "arguments": {}}]`,
    streams: true,
  },
  {
    label: 'xlam json fence',
    format: XLAM,
    text: `I'll call:\n\`\`\`json\n[{"name": "get_weather", "arguments": ${tricky}}, {"name": "t", "arguments": {"s": "\`\`\`"}}]\n\`\`\``,
    streams: true,
  },
  {
    label: 'xlam plain fence',
    format: XLAM,
    text: `\`\`\`\n[{"name": "get_weather", "arguments": ${tricky}}, {"name": "t", "arguments": {}}]\n\`\`\`\n`,
    streams: true,
  },
  {
    label: 'xlam [TOOL_CALLS]',
    format: XLAM,
    text: `[TOOL_CALLS][{"name": "get_weather", "arguments": ${tricky}}, {"name": "t", "arguments": {}}]`,
    streams: true,
  },
  {
    label: 'xlam <tool_call>',
    format: XLAM,
    text: `Ok.<tool_call>[{"name": "get_weather", "arguments": ${tricky}}, {"name": "t", "arguments": {}}]</tool_call>`,
    streams: true,
  },
  {
    label: 'kimi k2',
    format: KIMI_K2,
    text: `Checking.<|tool_calls_section_begin|>\n${kb}functions.get_weather:0${ka}${tricky}${ke}\n${kb} t:1 ${ka}{}${ke}\n<|tool_calls_section_end|>`,
    streams: true,
  },
  {
    label: "kimi k2's singular section tags",
    format: KIMI_K2,
    text: `<|tool_call_section_begin|>${kb}functions.get_weather:0${ka}${tricky}${ke}${kb}functions.t:1${ka}{}${ke}<|tool_call_section_end|>`,
    streams: true,
  },
  {
    label: 'glm 4.5',
    format: { ...GLM45, parameterTypes: new Map([['get_weather', new Map([['n', 'array']])]]) },
    text:
      'Sure.<tool_call>get_weather\n<arg_key>q</arg_key>\n<arg_value>(it\'s "b" [c</arg_value>\n' +
      '<arg_key>n</arg_key>\n<arg_value>[1, {"x": "y"}]</arg_value>\n</tool_call>\n<tool_call>t</tool_call>',
    streams: false,
  },
];

for (const c of cases) {
  test(`${c.label}: calls stream in any pieces, their arguments adding up to the answer's arguments`, () => {
    const whole = run(c.format, [c.text], false);
    assert.ok(whole.end.calls.length === 2, 'the text is two calls');
    if (c.text.includes(tricky)) assert.equal(whole.end.calls[0]!.argumentsJson, trickyJson);
    for (const size of [1, 2, 3, 5, 7, 0]) {
      const r = run(c.format, pieces(c.text, size, size + 7));
      assert.equal(r.content, whole.content, `size ${size}`);
      assert.deepEqual(r.end.calls, whole.end.calls, 'the same calls as the answer not streamed');
      const calls = byCall(r.events);
      assert.deepEqual(
        calls.map((call) => [call.name, call.fragments.join(''), call.ended]),
        whole.end.calls.map((call) => [call.name, call.argumentsJson, true]),
      );
      assert.deepEqual(r.end.events, [], 'every call was told as it was written, none at the end');
      if (size !== 1) continue;
      // One character a piece: JSON arguments come in many pieces; other forms whole, the push that closes each.
      const first = calls[0]!.fragments.length;
      assert.ok(c.streams ? first > 10 : first === 1, `${first} argument pieces`);
    }
  });
}

test('JSON calls start as soon as the name is read, before their arguments', () => {
  const text = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>';
  const r = run(HERMES, pieces(text, 1));
  const nameEnd = text.indexOf('get_weather') + 'get_weather"'.length;
  assert.deepEqual(r.pushed[nameEnd - 1], [{ type: 'start', index: 0, name: 'get_weather' }]);
  // The arguments' first character is told as it is read; the call's own closing brace and tag never are.
  assert.deepEqual(r.pushed[text.indexOf('{"city"')], [{ type: 'arguments', index: 0, text: '{' }]);
  const told = r.events.flatMap((ev) => (ev.type === 'arguments' ? [ev.text] : []));
  assert.equal(told.join(''), '{"city":"Paris"}');
});

test('a call whose arguments are not an object in the text, or come before its name, is told whole at its end', () => {
  for (const text of [
    '<tool_call>{"arguments": {"a": 1}, "name": "f"}</tool_call>',
    '<tool_call>{"name": "f", "arguments": "{\\"a\\": 1}"}</tool_call>',
    '<tool_call>{"name": "f", "arguments": {"a": 1}}</tool_call>',
  ]) {
    const r = run(HERMES, pieces(text, 1));
    const calls = byCall(r.events);
    assert.deepEqual(
      calls.map((c) => [c.name, c.fragments.join('')]),
      [['f', '{"a":1}']],
      text,
    );
  }
  const missing = byCall(run(HERMES, pieces('<tool_call>{"name": "f"}</tool_call>', 2)).events);
  assert.deepEqual(missing[0]!.fragments, ['{}']);
});

test('JSON that is not a call tells nothing and stays content', () => {
  for (const [format, text] of [
    [LLAMA3_JSON, '{"answer": 42}'],
    [HERMES, 'x<tool_call>{"name": broken</tool_call>'],
    [LLAMA3_JSON, 'Paris is sunny {"name": "f"}'],
  ] as const) {
    const r = run(format, pieces(text, 1));
    assert.deepEqual(r.events, [], text);
    assert.equal(r.content, text);
  }
});

test('what a stream told stands: calls it began stay calls when the text then fails to parse', () => {
  for (const text of [
    'Hi.<tool_call>{"name": "f", "arguments": {"a": "cut sho',
    'Hi.<tool_call>{"name": "f", "arguments": {"a": 1}} trailing</tool_call>',
  ]) {
    const whole = run(HERMES, [text], false);
    assert.deepEqual([whole.content, whole.end.calls], [text, []], 'not streamed: the text is content');
    const r = run(HERMES, pieces(text, 3));
    assert.equal(r.content, 'Hi.');
    const calls = byCall(r.events);
    const ended = calls.filter((c) => c.ended).map((c) => c.fragments.join(''));
    assert.deepEqual(
      r.end.calls.map((c) => c.argumentsJson),
      ended,
    );
    if (r.end.cut?.name) assert.equal(r.end.cut.argumentsJson, calls.at(-1)!.fragments.join(''));
  }
  const cut = run(HERMES, pieces('Hi.<tool_call>{"name": "f", "arguments": {"a": "cut sho', 3)).end;
  assert.deepEqual(cut.cut, { name: 'f', argumentsJson: '{"a":"cut sho' });
});

test('a forced list cut short: the calls it finished and the one it was writing, streamed or not alike', () => {
  const list = '[{"name": "a", "arguments": {"x": [1]}}, {"name": "search", "arguments": {"q": "ab"}}]';
  const at = (n: number, streamed: boolean) => {
    const r = run(FORCED_JSON, pieces(list.slice(0, n), streamed ? 1 : 0), streamed);
    const calls = r.end.calls.map((c) => [c.name, c.argumentsJson]);
    return { content: r.content, calls, cut: r.end.cut };
  };
  const none = { name: null, argumentsJson: '' };
  const cases: [number, unknown][] = [
    [1, { content: '', calls: [], cut: none }],
    [10, { content: '', calls: [], cut: none }],
    [13, { content: '', calls: [], cut: { name: 'a', argumentsJson: '' } }],
    [35, { content: '', calls: [], cut: { name: 'a', argumentsJson: '{"x":[' } }],
    [41, { content: '', calls: [['a', '{"x":[1]}']], cut: none }],
    [list.length - 5, { content: '', calls: [['a', '{"x":[1]}']], cut: { name: 'search', argumentsJson: '{"q":"a' } }],
  ];
  for (const [n, want] of cases) {
    assert.deepEqual(at(n, false), want, `${n} characters, not streamed`);
    assert.deepEqual(at(n, true), want, `${n} characters, streamed`);
  }
});

test('keys JSON.parse would reorder or drop keep their written order, streamed and not', () => {
  const text = '<tool_call>{"name": "f", "arguments": {"b": 1, "2": 2, "b": 3}}</tool_call>';
  const whole = run(HERMES, [text], false).end.calls[0]!;
  assert.equal(whole.argumentsJson, '{"b":1,"2":2,"b":3}');
  assert.deepEqual(whole.arguments, { 2: 2, b: 3 });
  const r = run(HERMES, pieces(text, 1));
  assert.equal(byCall(r.events)[0]!.fragments.join(''), whole.argumentsJson);
});

test("a tag written inside an argument's string is the string's text, streamed or not", () => {
  const code = 'if "</tool_call>" in s: s = s.split("<tool_call>")';
  const hermes =
    `Edit.<tool_call>{"name": "edit", "arguments": {"code": ${JSON.stringify(code)}, "n": 1}}</tool_call>` +
    '<tool_call>{"name": "t", "arguments": {"s": "it\'s \\"[TOOL_CALLS]\\""}}</tool_call>';
  const mistral = `[TOOL_CALLS]edit[ARGS]{"code": ${JSON.stringify(code)}}[TOOL_CALLS]t[ARGS]{"s": "[TOOL_CALLS]"}`;
  const pythonic = `[edit(code='${code.replaceAll('"', '\\"')}', n=1), t(s=")]")]`;
  for (const [format, text, calls] of [
    [
      HERMES,
      hermes,
      [
        ['edit', { code, n: 1 }],
        ['t', { s: 'it\'s "[TOOL_CALLS]"' }],
      ],
    ],
    [
      MISTRAL,
      mistral,
      [
        ['edit', { code }],
        ['t', { s: '[TOOL_CALLS]' }],
      ],
    ],
    [
      PYTHONIC,
      pythonic,
      [
        ['edit', { code, n: 1 }],
        ['t', { s: ')]' }],
      ],
    ],
  ] as const) {
    for (const size of [0, 1, text.length]) {
      const r = run(format, pieces(text, size));
      const told = byCall(r.events).map((c) => [c.name, JSON.parse(c.fragments.join(''))]);
      assert.deepEqual(told, calls, `${format.name}, pieces of ${size || 'random size'}`);
      assert.deepEqual(
        r.end.calls.map((c) => [c.name, c.arguments]),
        calls,
      );
      assert.equal(r.content, format === HERMES ? 'Edit.' : '');
    }
  }
});

test('a body of markup (Qwen3-Coder, DeepSeek) ends at the first closing tag, quotes in its values or not', () => {
  const text = '<tool_call>\n<function=f>\n<parameter=s>\nsay "hi\n</parameter>\n</function>\n</tool_call>after';
  const r = run(HERMES, pieces(text, 1));
  assert.deepEqual(
    r.end.calls.map((c) => [c.name, c.arguments]),
    [['f', { s: 'say "hi' }]],
  );
});
