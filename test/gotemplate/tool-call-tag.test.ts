import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toolCallTag } from '../../src/gotemplate/tool-call-tag.ts';

// Cases from Ollama's tools/template_test.go (TestParseTag), with '' where Ollama answers "{" (no tag).
test("tool-call tags by Ollama's rule", () => {
  const cases: [string, string | null][] = [
    ['{{ .Content }}', null],
    ['{{if .ToolCalls}}{{end}}', ''],
    ['{{if .ToolCalls}}{{range .ToolCalls}}{{ . }}{{end}}{{end}}', ''],
    ['{{if .ToolCalls}}```json\n{{end}}', '```json'],
    ['{{if .ToolCalls}}\n [ {{range .ToolCalls}}{{ . }}{{end}}]{{end}}', '['],
    ['{{if .ToolCalls}}{{range .ToolCalls}}{{ . }}{{end}}]{{end}}', ''],
    ['{{if .ToolCalls}}{{range .ToolCalls}}{"name": "{{ .Function.Name }}"}{{end}}{{end}}', ''],
    [
      '{{if .ToolCalls}}\n{{range .ToolCalls}}<tool_call>{"name": "{{ .Function.Name }}"}</tool_call>{{end}}{{end}}',
      '<tool_call>',
    ],
    ['{{if .ToolCalls}}First text{{if .Something}}inner{{end}}Second text{{end}}', 'First text'],
    ['{{if .ToolCalls}}[TOOL_CALL] [{{end}}', '[TOOL_CALL] ['],
    [
      '{{- range .Messages }}{{- if .ToolCalls }}[TOOL_CALLS][{{ range .ToolCalls }}{{ end }}]{{ end }}{{ end }}',
      '[TOOL_CALLS][',
    ],
  ];
  for (const [template, tag] of cases) assert.equal(toolCallTag(template), tag, template);
});
