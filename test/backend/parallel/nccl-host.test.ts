import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CudaUnavailable } from '../../../src/backend/cuda/libs.ts';
import { Nccl, ncclVersionName } from '../../../src/backend/cuda/nccl.ts';
import { checkTensorParallelLoad, cudaThroughNccl } from '../../../src/runner/tensor-parallel.ts';

/** Nccl.open's failure here, or null where NCCL loads. */
function ncclMissing(): CudaUnavailable | null {
  try {
    Nccl.open(['/opt/no-such-toolkit']);
    return null;
  } catch (e) {
    if (e instanceof CudaUnavailable) return e;
    throw e;
  }
}
const missing = ncclMissing();

test('without NCCL, opening it fails in one line naming the library and every path tried', {
  skip: !missing && 'NCCL loads here',
}, () => {
  const { message } = missing!;
  assert.ok(!message.includes('\n'), message);
  assert.match(
    message,
    /^the NCCL library libnccl\.so\.2 not found: tried libnccl\.so\.2, libnccl\.so and the folders /,
  );
  assert.ok(message.includes('/opt/no-such-toolkit/lib64, /opt/no-such-toolkit/lib,'), message);
  assert.match(message, /Install NCCL .* LD_LIBRARY_PATH$/);
});

test('NCCL version codes read as major.minor.patch', () => {
  assert.equal(ncclVersionName(22703), '2.27.3');
  assert.equal(ncclVersionName(21903), '2.19.3');
});

test('CUDA takes the NCCL path for several ranks, or one rank when forced; the plain path otherwise', () => {
  assert.equal(cudaThroughNccl(1, undefined), false);
  assert.equal(cudaThroughNccl(1, { tpForceNccl: false }), false);
  assert.equal(cudaThroughNccl(1, { tpForceNccl: true }), true);
  assert.equal(cudaThroughNccl(2, {}), true);
});

test('the forced one-rank NCCL path refuses what tensor parallelism cannot run, naming the setting; the CPU ignores it', () => {
  const forced = { device: 'cuda', cuda: { tpForceNccl: true } } as const;
  assert.throws(
    () => checkTensorParallelLoad(1, { ...forced, quantization: 'q8_0' }),
    (e: Error) =>
      e.message === 'PAGODA_TP_FORCE_NCCL=1: quantized weights (--quantization q8_0) cannot be split over ranks yet',
  );
  assert.throws(
    () => checkTensorParallelLoad(1, { ...forced, kvCompression: { method: 'snapkv' } }),
    (e: Error) => e.message === 'PAGODA_TP_FORCE_NCCL=1: --kv-compression cannot run with tensor parallelism yet',
  );
  assert.doesNotThrow(() => checkTensorParallelLoad(1, forced));
  assert.doesNotThrow(() => checkTensorParallelLoad(1, { ...forced, device: 'cpu', quantization: 'q8_0' }));
});
