import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReasoningParser } from '../../src/tools/reasoning-parser.ts';
import {
  DEEPSEEK,
  GLM45,
  GRANITE,
  GRANITE_20B_FC,
  HERMES,
  INTERNLM,
  KIMI_K2,
  LLAMA3_JSON,
  LLAMA4_PYTHONIC,
  MISTRAL,
  OLMO3,
  PHI4_MINI,
  TOOL_CALL_PARSERS,
  TOOL_CALLS_BLOCK,
  type ToolCallFormat,
  ToolCallParser,
  toolCallFormatOf,
  XLAM,
} from '../../src/tools/tool-parser.ts';

/** Feeds `text` in pieces of `size` characters; returns the streamed content and the final calls (parsed). */
function stream(format: ToolCallFormat, text: string, size: number) {
  const p = new ToolCallParser(format);
  let content = '';
  for (let i = 0; i < text.length; i += size) content += p.push(text.slice(i, i + size)).content;
  const end = p.finish();
  return { content: content + end.content, calls: end.calls.map((c) => ({ name: c.name, arguments: c.arguments })) };
}

const weather = { name: 'get_weather', arguments: { city: 'Paris', unit: 'c' } };

test('Hermes / Qwen: content before the call streams, calls parse, any chunking', () => {
  const text =
    'Let me check.<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}\n</tool_call>\n<tool_call>\n{"name": "t", "arguments": {}}\n</tool_call>';
  for (const size of [1, 3, 7, 1000]) {
    const r = stream(HERMES, text, size);
    assert.equal(r.content, 'Let me check.');
    assert.deepEqual(r.calls, [weather, { name: 't', arguments: {} }]);
  }
});

test('text that only looks like the start of a tag is content', () => {
  const r = stream(HERMES, 'a < b and <tool is fine', 2);
  assert.equal(r.content, 'a < b and <tool is fine');
  assert.deepEqual(r.calls, []);
  const p = new ToolCallParser(HERMES);
  assert.equal(p.push('x <tool_').content, 'x '); // held back: it may open a call
});

test('Llama 3.x: bare JSON with parameters, the python tag, parallel calls separated by ;', () => {
  const bare = '{"name": "get_weather", "parameters": {"city": "Paris", "unit": "c"}}';
  assert.deepEqual(stream(LLAMA3_JSON, bare, 4).calls, [weather]);
  assert.deepEqual(stream(LLAMA3_JSON, `<|python_tag|>${bare}`, 5).calls, [weather]);
  assert.deepEqual(stream(LLAMA3_JSON, `${bare}; {"name": "t", "parameters": {}}`, 9).calls, [
    weather,
    { name: 't', arguments: {} },
  ]);
  const prose = stream(LLAMA3_JSON, 'Paris is sunny {not json}', 3);
  assert.equal(prose.content, 'Paris is sunny {not json}');
  const notCall = stream(LLAMA3_JSON, '{"answer": 42}', 3);
  assert.deepEqual(notCall, { content: '{"answer": 42}', calls: [] });
});

test('Mistral: [TOOL_CALLS][…] and the newer [TOOL_CALLS]name[ARGS]{…}', () => {
  const old = '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}]';
  assert.deepEqual(stream(MISTRAL, old, 6).calls, [weather]);
  const v11 = '[TOOL_CALLS]get_weather[ARGS]{"city": "Paris", "unit": "c"}[TOOL_CALLS]t[ARGS]{}';
  assert.deepEqual(stream(MISTRAL, v11, 4).calls, [weather, { name: 't', arguments: {} }]);
});

test('Qwen3-Coder: <function=…> calls inside <tool_call>, values typed by the schema where it knows them', () => {
  const text =
    'Sure.<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n<parameter=unit>\nc\n' +
    '</parameter>\n</function>\n</tool_call>\n<tool_call>\n<function=t>\n</function>\n</tool_call>';
  for (const size of [1, 5, 1000]) {
    const r = stream(HERMES, text, size);
    assert.equal(r.content, 'Sure.');
    assert.deepEqual(r.calls, [weather, { name: 't', arguments: {} }]);
  }
  const typed = (value: string, type?: string) => {
    const types = new Map([['f', new Map(type ? [['p', type]] : [])]]);
    const call = `<tool_call>\n<function=f>\n<parameter=p>\n${value}\n</parameter>\n</function>\n</tool_call>`;
    return stream({ ...HERMES, parameterTypes: types }, call, 4).calls[0]?.arguments.p;
  };
  assert.equal(typed('12'), '12', 'no schema: a string');
  assert.equal(typed('12', 'integer'), 12);
  assert.equal(typed('1.5', 'integer'), '1.5', 'not an integer: kept as written');
  assert.equal(typed('-2.5e3', 'number'), -2500);
  assert.equal(typed('false', 'boolean'), false);
  assert.equal(typed('True', 'boolean'), true, 'Python-cased');
  assert.equal(typed('0x10', 'number'), '0x10', 'decimal only');
  assert.deepEqual(typed('[1, "a"]', 'array'), [1, 'a']);
  assert.equal(typed('{broken', 'object'), '{broken');
  assert.equal(typed('null', 'string'), null);
  assert.equal(typed('  two\nlines ', 'string'), '  two\nlines ', 'only the newline on each side is trimmed');
  // Not well formed: the text is content after all.
  const open = 'x<tool_call>\n<function=f>\n<parameter=p>\n1\n</function>\n</tool_call>';
  assert.deepEqual(stream(HERMES, open, 3), { content: open, calls: [] });
  const stray = 'x<tool_call>\n<function=f>\n</function>\ntrailing\n</tool_call>';
  assert.deepEqual(stream(HERMES, stray, 3), { content: stray, calls: [] });
});

test('DeepSeek: V3 / R1 calls (function, name, a json fence) and V3.1 calls (name, JSON)', () => {
  const [b, sep, e] = ['<｜tool▁call▁begin｜>', '<｜tool▁sep｜>', '<｜tool▁call▁end｜>'];
  const r1 =
    `Checking.<｜tool▁calls▁begin｜>${b}function${sep}get_weather\n\`\`\`json\n{"city": "Paris", "unit": "c"}\n\`\`\`${e}` +
    `\n${b}function${sep}t\n\`\`\`json\n{}\n\`\`\`${e}<｜tool▁calls▁end｜>`;
  const v31 = `Checking.<｜tool▁calls▁begin｜>${b}get_weather${sep}{"city": "Paris", "unit": "c"}${e}${b}t${sep}{}${e}<｜tool▁calls▁end｜>`;
  for (const text of [r1, v31]) {
    for (const size of [1, 4, 1000]) {
      const r = stream(DEEPSEEK, text, size);
      assert.equal(r.content, 'Checking.');
      assert.deepEqual(r.calls, [weather, { name: 't', arguments: {} }]);
    }
  }
  const broken = `x<｜tool▁calls▁begin｜>${b}get_weather${sep}{"city": ${e}<｜tool▁calls▁end｜>`;
  assert.deepEqual(stream(DEEPSEEK, broken, 5), { content: broken, calls: [] });
  assert.equal(toolCallFormatOf(`{% if tools %}{{ tools }}{% endif %}<｜tool▁calls▁begin｜>`)?.name, 'deepseek');
});

test('pythonic calls (Llama 3.2 / 4 templates): [name(key=value), …] with Python literals, in any chunking', () => {
  const text =
    '[get_weather(city="Paris", unit=\'c\'), t(), plan(days=3, ratio=-0.5e1, ok=True, off=False, none=None, ' +
    'tags=["a", \'b\'], pair=(1, 2), opts={"deep": {"x": [1]}, 2: "two"}, note="line\\nnext \\"q\\" \\u00e9\\x41")]';
  const plan = {
    days: 3,
    ratio: -5,
    ok: true,
    off: false,
    none: null,
    tags: ['a', 'b'],
    pair: [1, 2],
    opts: { deep: { x: [1] }, 2: 'two' },
    note: 'line\nnext "q" éA',
  };
  for (const size of [1, 6, 1000]) {
    const r = stream(LLAMA3_JSON, text, size);
    assert.equal(r.content, '');
    assert.deepEqual(r.calls, [weather, { name: 't', arguments: {} }, { name: 'plan', arguments: plan }]);
  }
  // Not a call list after all (a positional argument, an unclosed string, text after the list): content.
  for (const bad of ['[f(1)]', '[f(x="open)]', '[f(x=1)] and more', '[f(x=1),, g()]']) {
    assert.deepEqual(stream(LLAMA3_JSON, bad, 3), { content: bad, calls: [] }, bad);
  }
});

test('call text that only looks like calls is content; "__proto__" arguments are kept as arguments', () => {
  const [b, sep, e] = ['<｜tool▁call▁begin｜>', '<｜tool▁sep｜>', '<｜tool▁call▁end｜>'];
  // A call missing its separator must not swallow the next call's tokens into a name.
  const swallowed = `<｜tool▁calls▁begin｜>${b}broken{"a":1}${e}${b}t${sep}{}${e}<｜tool▁calls▁end｜>`;
  assert.deepEqual(stream(DEEPSEEK, swallowed, 7), { content: swallowed, calls: [] });
  const unnamed = '<tool_call>\n<function= >\n</function>\n</tool_call>';
  assert.deepEqual(stream(HERMES, unnamed, 7), { content: unnamed, calls: [] });
  const own = (args: Record<string, unknown>) => [Object.hasOwn(args, '__proto__'), JSON.stringify(args)];
  const pythonic = stream(LLAMA3_JSON, '[f(__proto__={"a": 1}, b={"__proto__": 2})]', 5).calls[0]!.arguments;
  assert.deepEqual(own(pythonic), [true, '{"__proto__":{"a":1},"b":{"__proto__":2}}']);
  const xml = '<tool_call>\n<function=f>\n<parameter=__proto__>\nx\n</parameter>\n</function>\n</tool_call>';
  assert.deepEqual(own(stream(HERMES, xml, 5).calls[0]!.arguments), [true, '{"__proto__":"x"}']);
});

test('a call that does not parse comes back as content', () => {
  const r = stream(HERMES, 'x<tool_call>{"name": broken</tool_call>', 3);
  assert.equal(r.content, 'x<tool_call>{"name": broken</tool_call>');
  assert.deepEqual(r.calls, []);
});

test('formats from templates: Jinja markers, and the tag of a Go template', () => {
  assert.equal(toolCallFormatOf('{% if tools %}<tools>{% endif %}<tool_call>')?.name, 'hermes');
  assert.equal(toolCallFormatOf('[AVAILABLE_TOOLS]{{ tools }}[TOOL_CALLS]')?.name, 'mistral');
  assert.equal(toolCallFormatOf('<|start_header_id|>{% if tools %}{{ "parameters" }}{% endif %}')?.name, 'llama3_json');
  assert.equal(toolCallFormatOf('{% for m in messages %}{{ m.content }}{% endfor %}'), null);
  assert.deepEqual(toolCallFormatOf('…', '[TOOL_CALLS] ['), {
    name: 'template',
    tags: [{ start: '[TOOL_CALLS] [', end: null }],
  });
  assert.equal(toolCallFormatOf('…', '')?.bare, true);
  // A Go template's list tag: the calls follow separated by commas, the list closes with ']'.
  const list = stream(
    toolCallFormatOf('…', '[TOOL_CALLS] [')!,
    '[TOOL_CALLS] [{"name": "a", "arguments": {}}, {"name": "b", "arguments": {"x": 1}}]',
    4,
  );
  assert.deepEqual(list.calls, [
    { name: 'a', arguments: {} },
    { name: 'b', arguments: { x: 1 } },
  ]);
});

test("vLLM's other parsers' formats: text that does not parse as their calls stays content", () => {
  const fence = '```';
  const kimi = (id: string, args: string) =>
    `<|tool_call_begin|>${id}<|tool_call_argument_begin|>${args}<|tool_call_end|>`;
  for (const [format, text] of [
    [PHI4_MINI, 'Use functools[partial] here.'],
    [GRANITE, 'x<|tool_call|>[{"name": broken]'],
    [GRANITE, '[1] is a footnote, <tool_call> a tag'],
    [GRANITE_20B_FC, '<function_call> not json'],
    [TOOL_CALLS_BLOCK, 'x<tool_calls>[{"oops": 1}]</tool_calls>'],
    [TOOL_CALLS_BLOCK, '<tool_calls>\n{"name": "f", "arguments": {}}\nand prose\n</tool_calls>'],
    [INTERNLM, '<|action_start|><|plugin|>{"name": "f", "parameters": {"a": }<|action_end|>'],
    [INTERNLM, 'Run <|action_start|><|interpreter|>print(1)<|action_end|>'],
    [XLAM, `Here:\n${fence}json\n{"answer": 42}\n${fence}\ndone`],
    [XLAM, `${fence}python\nprint("[TOOL_CALLS]")\n${fence}`],
    [XLAM, '[TOOL_CALLS] maybe later'],
    [LLAMA4_PYTHONIC, '<|python_start|>print("hi")<|python_end|>'],
    [LLAMA4_PYTHONIC, '[f(x=1)] and more'],
    [KIMI_K2, `x<|tool_calls_section_begin|>${kimi('functions.f:0', '{"a": ')}<|tool_calls_section_end|>`],
    [KIMI_K2, `<|tool_calls_section_begin|>${kimi('functions.f', '{}')}<|tool_calls_section_end|>`],
    [KIMI_K2, `<|tool_calls_section_begin|>${kimi('functions.f:0', '[1]')}<|tool_calls_section_end|>`],
    [GLM45, 'x<tool_call>f\n<arg_key>a</arg_key>\n</tool_call>'],
    [GLM45, '<tool_call>two words</tool_call>'],
    [GLM45, '<tool_call>{"name": "f", "arguments": {}}</tool_call>'],
    [HERMES, '<tool_call>f\n<arg_key>a</arg_key>\n<arg_value>1</arg_value>\n</tool_call>'],
    [OLMO3, '<function_calls>\nprint hello\n</function_calls>'],
    [OLMO3, '<function_calls>\nf(x=1) and prose\n</function_calls>'],
    [OLMO3, '<function_calls>\nf(x=undefined_name)\n</function_calls>'],
  ] as const) {
    for (const size of [1, 4, 1000]) assert.deepEqual(stream(format, text, size), { content: text, calls: [] }, text);
  }
});

test('GLM 4.5: a name, then argument pairs typed by the schema where it knows them', () => {
  const types = new Map([
    [
      'get_weather',
      new Map([
        ['days', 'integer'],
        ['metric', 'boolean'],
        ['unit', 'string'],
      ]),
    ],
  ]);
  const text =
    'Let me see.<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value> Paris </arg_value>\n' +
    '<arg_key>days</arg_key>\n<arg_value>3</arg_value>\n<arg_key>metric</arg_key><arg_value>True</arg_value>\n' +
    '<arg_key>unit</arg_key>\n<arg_value>12</arg_value>\n</tool_call><tool_call>t\n</tool_call>';
  for (const size of [1, 5, 1000]) {
    assert.deepEqual(stream({ ...GLM45, parameterTypes: types }, text, size), {
      content: 'Let me see.',
      calls: [
        { name: 'get_weather', arguments: { city: 'Paris', days: 3, metric: true, unit: '12' } },
        { name: 't', arguments: {} },
      ],
    });
  }
});

test('OLMo 3: Python-style calls a line each between <function_calls> tags, JSON words read as values', () => {
  const text =
    'Checking.<function_calls>\nget_weather(city="Paris", days=3, metric=true, note=null)\n' +
    "search(q='a, b (c)', tags=['x'], opts={'deep': False})\n</function_calls>";
  for (const size of [1, 7, 1000]) {
    assert.deepEqual(stream(OLMO3, text, size), {
      content: 'Checking.',
      calls: [
        { name: 'get_weather', arguments: { city: 'Paris', days: 3, metric: true, note: null } },
        { name: 'search', arguments: { q: 'a, b (c)', tags: ['x'], opts: { deep: false } } },
      ],
    });
  }
  assert.equal(toolCallFormatOf('{% if tools %}<function_calls>{{ tc.name }}(){% endif %}')?.name, 'olmo3');
  assert.equal(TOOL_CALL_PARSERS.olmo3, OLMO3);
});

test("formats from templates: vLLM's other parsers' tags", () => {
  const of = (template: string) => toolCallFormatOf(template)?.name ?? null;
  const granite = '<|start_of_role|>available_tools<|end_of_role|>{{ tools | tojson }}respond only with <|tool_call|>';
  assert.equal(of(granite), 'granite');
  assert.equal(of('<|tool|>{{ tools }}<|/tool|>{{ "<|tool_call|>" + tc | tojson + "<|/tool_call|>" }}'), null);
  assert.equal(of('{% if tools %}formatted as functools[{"name": [function name]}]{% endif %}'), 'phi4_mini_json');
  assert.equal(of("{% for tc in m.tool_calls %}{{- '<function_call> ' + tc | tojson }}{% endfor %}"), 'granite-20b-fc');
  assert.equal(
    of("{{ '<tool_calls>\\n' }}{% for tc in m.tool_calls %}{{ tc | tojson }}{% endfor %}</tool_calls>"),
    'tool_calls',
  );
  assert.equal(of('{%- for tc in m.tool_calls %}{{- "<|action_start|><|plugin|>\\n" }}{% endfor %}'), 'internlm');
  const llama4 = "{{- '<|header_start|>assistant<|header_end|>' }}{% if tools %}{{ tc.name + '(' }}{% endif %}";
  assert.equal(of(llama4), 'llama4_pythonic');
  assert.equal(of(`${llama4}{{ '"parameters": ' }}`), 'llama3_json', "Llama 4's JSON template");
  assert.equal(of('<|header_start|>{{ m.content }}<|eot|>'), null, 'no tools');
  assert.equal(of("{{ '<|tool_calls_section_begin|>' }}{% for tc in m.tool_calls %}…{% endfor %}"), 'kimi_k2');
  const glm =
    "{{ '\\n<tool_call>' + tc.name }}{% for k, v in args %}<arg_key>{{ k }}</arg_key>{% endfor %}</tool_call>";
  assert.equal(of(glm), 'glm45');
});

test('reasoning: <think>…</think> split from the content, streamed in any chunking', () => {
  const text = '<think>\nLet me think.\n</think>\n\nThe answer is 4.';
  for (const size of [1, 2, 5, 100]) {
    const p = new ReasoningParser(false);
    let reasoning = '';
    let content = '';
    for (let i = 0; i < text.length; i += size) {
      const d = p.push(text.slice(i, i + size));
      reasoning += d.reasoning;
      content += d.content;
    }
    const end = p.finish();
    assert.equal(reasoning + end.reasoning, '\nLet me think.\n');
    assert.equal(content + end.content, 'The answer is 4.');
  }
  // DeepSeek-R1 distills: the prompt opened the block, the output only closes it.
  const r1 = new ReasoningParser(true);
  assert.deepEqual(r1.push('hmm</think>ok'), { reasoning: 'hmm', content: 'ok' });
  // No think block at all: all content; an unfinished block: all reasoning.
  const plain = new ReasoningParser(false);
  assert.deepEqual(plain.push('<thin'), { reasoning: '', content: '' });
  assert.deepEqual(plain.finish(), { reasoning: '', content: '<thin' });
  const open = new ReasoningParser(false);
  open.push('<think>still going');
  assert.deepEqual(open.finish(), { reasoning: '', content: '' });
});
