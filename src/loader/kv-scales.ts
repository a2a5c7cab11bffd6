import { existsSync, statSync } from 'node:fs';
import { toFloat32 } from '../primitives/host-tensor.ts';
import { openSafetensors } from './safetensors.ts';

/** A layer's K or V scale: compressed-tensors' `self_attn.k_scale`, or AutoFP8's `k_proj.output_scale`. */
const SCALE = /(?:^|\.)layers\.(\d+)\.self_attn\.(?:(k|v)_scale|(k|v)_proj\.output_scale)$/;

/**
 * An FP8 checkpoint's KV cache scales, per layer (a stored e4m3 value times the scale is the value); 1 for a layer
 * the checkpoint gives none. Null when it has none at all (and for GGUF files, which carry none).
 */
export function checkpointKvScales(dir: string, numLayers: number): { k: number; v: number }[] | null {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return null;
  const source = openSafetensors(dir);
  try {
    const scales = Array.from({ length: numLayers }, () => ({ k: 1, v: 1 }));
    let found = false;
    for (const name of source.names()) {
      const m = SCALE.exec(name);
      const layer = m ? Number(m[1]) : -1;
      if (!m || layer >= numLayers) continue;
      scales[layer]![(m[2] ?? m[3]) as 'k' | 'v'] = toFloat32(source.get(name))[0]!;
      found = true;
    }
    return found ? scales : null;
  } finally {
    source.close();
  }
}
