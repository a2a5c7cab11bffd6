import { hasGgufMagic } from '../../loader/gguf/read.ts';
import type { ChatMessage, Manifest, ParameterValue } from '../manifest.ts';
import { PARAMETER_TYPES, setParameter } from '../modelfile.ts';
import { LAYER_PREFIX, type Layer, type OllamaManifest } from './manifest.ts';

/** What the layers need of a store: a checked blob path, and a small blob's text (size and digest checked). */
export interface BlobSource {
  /** The blob's path once it is known to be inside the store and as large as the layer says. */
  path(layer: Layer): string;
  text(layer: Layer): string;
}

/** A manifest whose weights are one GGUF file. */
export type GgufManifest = Manifest & { source: { kind: 'gguf'; path: string } };

/** Layers pagoda cannot honour: refusing them beats running the model without them. */
const UNSUPPORTED: Record<string, string> = {
  adapter: 'a LoRA adapter',
  projector: 'a vision projector',
};
const KINDS = ['model', 'template', 'system', 'license', 'params', 'messages'] as const;

/** A layer's kind, or a one-line Error for a layer pagoda cannot use (checked before a pull downloads anything). */
export function layerKind(layer: Layer): (typeof KINDS)[number] {
  const kind = layer.mediaType.startsWith(LAYER_PREFIX) ? layer.mediaType.slice(LAYER_PREFIX.length) : '';
  if ((KINDS as readonly string[]).includes(kind)) return kind as (typeof KINDS)[number];
  const what = UNSUPPORTED[kind];
  throw new Error(
    what
      ? `has ${what} (${layer.mediaType}), which pagoda does not support`
      : `has a layer of type ${layer.mediaType}, which pagoda does not know`,
  );
}

/**
 * An Ollama model's layers as the manifest pagoda's store keeps: the GGUF weights (`model`), the Go `template`,
 * `system`, `params`, `messages` and `license`s. Throws a one-line Error naming the layer otherwise.
 */
export function manifestFromLayers(
  manifest: OllamaManifest,
  blobs: BlobSource,
  from: string,
  created: Date,
): GgufManifest {
  let model = '';
  const out: Omit<Manifest, 'source'> = {
    schemaVersion: 1,
    from,
    parameters: {},
    messages: [],
    license: [],
    createdAt: created.toISOString(),
  };
  for (const layer of manifest.layers) {
    switch (layerKind(layer)) {
      case 'model':
        if (model) throw new Error('has two model layers');
        model = blobs.path(layer);
        if (!hasGgufMagic(model)) throw new Error(`model blob ${layer.digest} is not a GGUF file (wrong magic)`);
        break;
      case 'template':
        out.template = blobs.text(layer);
        break;
      case 'system':
        out.system = blobs.text(layer);
        break;
      case 'license':
        out.license.push(blobs.text(layer));
        break;
      case 'params':
        out.parameters = parametersFrom(blobs.text(layer), layer);
        break;
      case 'messages':
        out.messages = messagesFrom(blobs.text(layer), layer);
        break;
    }
  }
  if (!model) throw new Error(`has no model layer (${LAYER_PREFIX}model)`);
  return { ...out, source: { kind: 'gguf', path: model } };
}

/**
 * The params layer (JSON: `{"stop": [...], "temperature": 0.6, ...}`). Options pagoda has no equivalent for
 * (runner settings such as num_gpu, or mirostat) are left out; known ones are type-checked.
 */
function parametersFrom(text: string, layer: Layer): Record<string, ParameterValue> {
  const json = parseJson(text, layer);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new Error(`params layer ${layer.digest}: expected a JSON object`);
  }
  const out: Record<string, ParameterValue> = {};
  for (const [key, value] of Object.entries(json)) {
    if (!(key in PARAMETER_TYPES)) continue;
    setParameter(out, key, value as ParameterValue, (msg) => {
      throw new Error(`params layer ${layer.digest}: ${msg}`);
    });
  }
  return out;
}

function messagesFrom(text: string, layer: Layer): ChatMessage[] {
  const json = parseJson(text, layer);
  const ok = (m: unknown): m is ChatMessage =>
    typeof m === 'object' &&
    m !== null &&
    typeof (m as ChatMessage).role === 'string' &&
    typeof (m as ChatMessage).content === 'string';
  if (!Array.isArray(json) || !json.every(ok)) {
    throw new Error(`messages layer ${layer.digest}: expected a JSON list of {role, content}`);
  }
  return json.map(({ role, content }) => ({ role, content }));
}

function parseJson(text: string, layer: Layer): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(
      `${layer.mediaType.slice(LAYER_PREFIX.length)} layer ${layer.digest}: not JSON (${(err as Error).message})`,
    );
  }
}
