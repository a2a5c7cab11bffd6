// Ollama's tools and tool calls as its templates see them: Go field names, printed as Ollama's JSON.

/** Go's json.Marshal text: <, > and & escaped as \u003c, \u003e, \u0026. */
function goJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
}

/** A Go map marshals with its keys sorted. */
function sortedMap(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedMap);
  if (!value || typeof value !== 'object') return value;
  const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Object.fromEntries(entries.map(([k, v]) => [k, sortedMap(v)]));
}

/**
 * Go-style fields for templates (`.Function.Name`) that print as Ollama's JSON (`{{ .Function }}`, `{{ . }}`): its
 * structs' field order, maps with sorted keys.
 */
function goObject(fields: Record<string, unknown>, json: unknown): Record<string, unknown> {
  const out = { ...fields };
  Object.defineProperty(out, 'String', { value: () => goJson(json), enumerable: false });
  Object.defineProperty(out, 'toJSON', { value: () => json, enumerable: false });
  return out;
}

type ToolJson = { type?: string; function?: { name?: string; description?: string; parameters?: Parameters } };
type Parameters = { type?: unknown; $defs?: unknown; items?: unknown; required?: unknown; properties?: unknown };
type Property = { type?: unknown; items?: unknown; description?: unknown; enum?: unknown };

/** Ollama's api.Tool as json.Marshal writes it (the field order of its structs; omitempty where it has it). */
function ollamaToolJson(tool: ToolJson) {
  const f = tool.function ?? {};
  const p = f.parameters ?? {};
  const properties = Object.entries((p.properties ?? {}) as Record<string, Property>)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, prop]) => [
      name,
      {
        type: prop.type ?? '',
        ...(prop.items !== undefined ? { items: prop.items } : {}),
        description: prop.description ?? '',
        ...(Array.isArray(prop.enum) && prop.enum.length > 0 ? { enum: prop.enum } : {}),
      },
    ]);
  const parameters = {
    type: p.type ?? '',
    ...(p.$defs !== undefined ? { $defs: p.$defs } : {}),
    ...(p.items !== undefined ? { items: p.items } : {}),
    required: p.required ?? null,
    properties: Object.fromEntries(properties),
  };
  return {
    type: tool.type ?? 'function',
    function: { name: f.name ?? '', description: f.description ?? '', parameters },
  };
}

export function goTools(tools: readonly unknown[]) {
  const list = tools.map((t) => goTool(t as ToolJson));
  const json = tools.map((t) => ollamaToolJson(t as ToolJson));
  Object.defineProperty(list, 'String', { value: () => goJson(json), enumerable: false });
  return list;
}

function goTool(tool: ToolJson) {
  const json = ollamaToolJson(tool);
  const f = json.function;
  const params = goObject(
    { Type: f.parameters.type, Required: f.parameters.required ?? [], Properties: f.parameters.properties },
    f.parameters,
  );
  const fn = goObject({ Name: f.name, Description: f.description, Parameters: params }, f);
  return goObject({ Type: json.type, Function: fn }, json);
}

export function goToolCall(call: unknown) {
  const f = ((call ?? {}) as { function?: { name?: string; arguments?: unknown } }).function ?? {};
  let args = f.arguments ?? {};
  if (typeof args === 'string') {
    try {
      args = JSON.parse(args);
    } catch {
      // Left as the text it is.
    }
  }
  const sorted = sortedMap(args);
  const json = { name: f.name ?? '', arguments: sorted };
  const argsValue = sorted && typeof sorted === 'object' ? goObject(sorted as Record<string, unknown>, sorted) : sorted;
  return goObject({ Function: goObject({ Name: f.name ?? '', Arguments: argsValue }, json) }, { function: json });
}
