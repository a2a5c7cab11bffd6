import { z } from 'zod';
import { FOLDER_FILE } from './blob-folder.ts';
import { DIGEST } from './ollama/manifest.ts';

/**
 * Where a stored model's weights live. HF repos resolve through the HF cache at load time; a `blob` (a GGUF pulled
 * from an Ollama-compatible registry or uploaded) is `blobs/sha256-<hex>` in the store's own folder; a `blob-folder`
 * (an uploaded safetensors folder: file name -> digest) is a folder of links to such blobs (blob-folder.ts).
 */
const folder = z.object({ kind: z.literal('hf-folder'), path: z.string() });
const blobFolder = z.object({
  kind: z.literal('blob-folder'),
  files: z.record(z.string().regex(FOLDER_FILE), z.string().regex(DIGEST)),
});
export const ModelSourceSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('hf-repo'), repo: z.string(), revision: z.string() }),
  folder,
  z.object({ kind: z.literal('gguf'), path: z.string() }),
  z.object({ kind: z.literal('blob'), digest: z.string().regex(DIGEST) }),
  blobFolder,
]);
export type ModelSource = z.infer<typeof ModelSourceSchema>;

/** A Modelfile's ADAPTER: a PEFT LoRA folder merged into the weights as they load, by path or uploaded as blobs. */
export const AdapterSourceSchema = z.discriminatedUnion('kind', [folder, blobFolder]);
export type AdapterSource = z.infer<typeof AdapterSourceSchema>;

export const ParameterValueSchema = z.union([z.number(), z.string(), z.boolean(), z.array(z.string())]);
export type ParameterValue = z.infer<typeof ParameterValueSchema>;

export const ChatMessageSchema = z.object({ role: z.string(), content: z.string() });
export type ChatMessage = z.infer<typeof ChatMessageSchema>;

/** One named model in the store: its weights plus what a Modelfile layered on top. */
export const ManifestSchema = z.object({
  schemaVersion: z.literal(1),
  source: ModelSourceSchema,
  /** The FROM reference as written, for `show --modelfile`. */
  from: z.string(),
  parameters: z.record(z.string(), ParameterValueSchema),
  /** Default system prompt (used when a request brings none). */
  system: z.string().optional(),
  /** A Go template in Ollama's dialect; absent = the model's own (Jinja) chat template. */
  template: z.string().optional(),
  messages: z.array(ChatMessageSchema),
  license: z.array(z.string()),
  adapter: AdapterSourceSchema.optional(),
  createdAt: z.string(),
});
export type Manifest = z.infer<typeof ManifestSchema>;
