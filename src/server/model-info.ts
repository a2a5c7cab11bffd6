import type { ModelTask } from '../loader/model-task.ts';
import type { Manifest, ParameterValue } from '../store/manifest.ts';

/** What /api/tags, /api/show and /v1/models tell about a model without loading it. */
export interface ModelInfo {
  architecture: string;
  family: string;
  /** 'safetensors' | 'gguf' | 'demo'. */
  format: string;
  parameterCount: number;
  /** Weight dtype as stored, e.g. 'float32', 'bfloat16'. */
  quantization: string;
  sizeBytes: number;
  modifiedAt: Date;
  /** The model's own maximum sequence length. */
  maxContextLength: number;
  /** config.json as shipped, for /api/show's model_info. */
  config: Record<string, unknown>;
  /** A GGUF file's own metadata, which /api/show's model_info gives as it is (Ollama's keys). */
  ggufMetadata?: Record<string, unknown>;
  chatTemplate: string | null;
  /** A stored model's Modelfile layers (system prompt, Go template, parameters, license); absent for folders. */
  manifest?: Manifest | null;
  /**
   * The model's request defaults under Ollama's names, as /api/show's `parameters` lists them: generation_config.json's
   * sampling values beneath the Modelfile's PARAMETERs. Absent: the Modelfile's alone.
   */
  parameters?: Record<string, ParameterValue>;
  /** What the model serves (default 'generate'): text, embeddings ('embed') or rerank scores ('score'). */
  task?: ModelTask;
}
