/** Sets to -Infinity every logit whose token the bitmask forbids (bit i of word i >> 5 clear). */
export function applyTokenBitmask(logits: Float32Array, mask: Int32Array): void {
  for (let w = 0; w < mask.length; w++) {
    const bits = mask[w]!;
    if (bits === -1) continue;
    const end = Math.min(logits.length, (w + 1) * 32);
    for (let id = w * 32; id < end; id++) if (!((bits >>> (id & 31)) & 1)) logits[id] = Number.NEGATIVE_INFINITY;
  }
}
