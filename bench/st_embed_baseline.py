"""sentence-transformers baseline for `pagoda bench embed`, run in the same device call (reference only, not pagoda).

    python3 bench/st_embed_baseline.py bench/configs/bert-base [--num-inputs 10000] [--input-len-range 16,512]

The model of CONFIG_DIR (config.json, 1_Pooling/config.json, modules.json) with random bf16 weights on the GPU, as a
SentenceTransformer (Transformer -> Pooling -> Normalize) in bf16 with encode()'s default batching (32 inputs,
longest first, each batch padded to its longest input, results to the CPU per batch). The bench shapes have no
tokenizer, so the inputs are token ids: the same ones `pagoda bench embed` draws (mulberry32 with the same seed), fed
to the model's forward as encode() feeds its tokenizer's output. A tokenizer from the tiny fixture of the same family
only lets sentence-transformers build its Transformer module; it never runs.
Prints a markdown table of embeddings/s and tokens/s.
"""
import argparse
import json
import os
import shutil
import tempfile
import time

import torch
import transformers as T
from sentence_transformers import SentenceTransformer, models

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, '..', 'test', 'fixtures', 'models')


def mulberry32(seed):
    """src/util/random.ts's generator, bit for bit."""
    a = seed & 0xFFFFFFFF

    def imul(x, y):
        return (x * y) & 0xFFFFFFFF

    def nxt():
        nonlocal a
        a = (a + 0x6D2B79F5) & 0xFFFFFFFF
        t = a
        t = imul(t ^ (t >> 15), t | 1)
        t ^= (t + imul(t ^ (t >> 7), t | 61)) & 0xFFFFFFFF
        return ((t ^ (t >> 14)) & 0xFFFFFFFF) / 4294967296

    return nxt


def workload(vocab, n, lo, hi, seed):
    """src/bench/embed.ts embedInputs: per input its length, then its ids, from one stream."""
    r = mulberry32(seed)
    out = []
    for _ in range(n):
        length = lo + int(r() * (hi - lo + 1))
        out.append([int(r() * vocab) for _ in range(length)])
    return out


def pooling_mode(config_dir):
    cfg = json.load(open(os.path.join(config_dir, '1_Pooling', 'config.json')))
    if 'pooling_mode' in cfg:
        return cfg['pooling_mode']
    for flag, mode in (('pooling_mode_cls_token', 'cls'), ('pooling_mode_mean_tokens', 'mean'),
                       ('pooling_mode_max_tokens', 'max'), ('pooling_mode_lasttoken', 'lasttoken')):
        if cfg.get(flag):
            return mode
    raise SystemExit(f'{config_dir}: no pooling mode')


def main():
    p = argparse.ArgumentParser()
    p.add_argument('config')
    p.add_argument('--num-inputs', type=int, default=10000)
    p.add_argument('--input-len-range', default='16,512')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--batch-size', type=int, default=32)
    a = p.parse_args()
    lo, hi = (int(x) for x in a.input_len_range.split(','))

    cfg = T.AutoConfig.from_pretrained(a.config)
    decoder = cfg.model_type != 'bert'
    tmp = tempfile.mkdtemp()
    torch.manual_seed(0)
    with torch.device('cuda'):
        T.AutoModel.from_config(cfg, dtype=torch.bfloat16).save_pretrained(tmp)
    fixture = os.path.join(FIXTURES, 'tiny-qwen3-embed' if decoder else 'tiny-bert')
    for f in ('tokenizer.json', 'tokenizer_config.json'):
        shutil.copy(os.path.join(fixture, f), tmp)
    transformer = models.Transformer(tmp, max_seq_length=hi, model_args={'dtype': torch.bfloat16})
    dim = cfg.hidden_size
    st = SentenceTransformer(modules=[transformer, models.Pooling(dim, pooling_mode(a.config)), models.Normalize()],
                             device='cuda').to(torch.bfloat16).eval()
    pad = transformer.tokenizer.pad_token_id or 0
    left = decoder  # Qwen3-Embedding pads on the left, as its tokenizer does
    inputs = workload(cfg.vocab_size, a.num_inputs, lo, hi, a.seed)
    tokens = sum(len(x) for x in inputs)

    def encode(batch_inputs):
        # encode(): longest first, batches of batch_size, each padded to its longest, results to the CPU per batch.
        order = sorted(range(len(batch_inputs)), key=lambda i: -len(batch_inputs[i]))
        out = [None] * len(batch_inputs)
        with torch.inference_mode():
            for b in range(0, len(order), a.batch_size):
                idx = order[b:b + a.batch_size]
                width = max(len(batch_inputs[i]) for i in idx)
                ids = torch.full((len(idx), width), pad, dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                for row, i in enumerate(idx):
                    x = torch.tensor(batch_inputs[i])
                    span = slice(width - len(x), width) if left else slice(0, len(x))
                    ids[row, span] = x
                    mask[row, span] = 1
                features = {'input_ids': ids.to('cuda'), 'attention_mask': mask.to('cuda')}
                emb = st(features)['sentence_embedding'].float().cpu()
                for row, i in enumerate(idx):
                    out[i] = emb[row]
        return out

    encode(inputs[:256])  # warm-up: cuBLAS handles, kernels
    torch.cuda.synchronize()
    t = time.perf_counter()
    encode(inputs)
    torch.cuda.synchronize()
    s = time.perf_counter() - t
    name = os.path.basename(os.path.normpath(a.config))
    print(f'\n## sentence-transformers baseline: {name}, {torch.cuda.get_device_name()}\n')
    print(f'{a.num_inputs} inputs of {lo}..{hi} random tokens ({tokens} tokens), bf16, batch {a.batch_size}, '
          f'attention {transformer.auto_model.config._attn_implementation}\n')
    print('| path | embeddings/s | tokens/s | seconds |')
    print('|---|---|---|---|')
    print(f'| sentence-transformers | {a.num_inputs / s:.1f} | {tokens / s:.0f} | {s:.2f} |', flush=True)


if __name__ == '__main__':
    main()
