import assert from 'node:assert/strict';
import { homedir } from 'node:os';
import { test } from 'node:test';
import { cudaSettings, DEFAULT_CUDA_SETTINGS } from '../../src/backend/cuda/settings.ts';
import { settingsFromEnv } from '../../src/cli/settings.ts';
import { UserError } from '../../src/util/errors.ts';

test('kernel cache folder honours PAGODA_KERNEL_CACHE and XDG_CACHE_HOME', () => {
  assert.equal(
    settingsFromEnv({ PAGODA_KERNEL_CACHE: '/tmp/k', XDG_CACHE_HOME: '/tmp/xdg' }).cuda.kernelCache,
    '/tmp/k',
  );
  assert.equal(settingsFromEnv({ XDG_CACHE_HOME: '/tmp/xdg' }).cuda.kernelCache, '/tmp/xdg/pagoda/kernels');
  assert.equal(cudaSettings(settingsFromEnv({}).cuda).kernelCache, `${homedir()}/.cache/pagoda/kernels`);
});

test('an empty environment leaves every setting at its default', () => {
  const s = settingsFromEnv({});
  assert.deepEqual(s, { device: undefined, cuda: {}, cpuThreads: undefined });
  assert.deepEqual(cudaSettings(s.cuda), DEFAULT_CUDA_SETTINGS);
});

test('each PAGODA_* variable keeps its meaning: device, CPU threads, tensor-parallel size, quantization, CUDA device, PDL, GEMV, simple attention, forced NCCL', () => {
  const s = settingsFromEnv({
    PAGODA_DEVICE: 'cpu',
    PAGODA_CPU_THREADS: '3',
    PAGODA_TENSOR_PARALLEL_SIZE: '2',
    PAGODA_QUANTIZATION: 'Q4_K_M',
    PAGODA_CUDA_DEVICE: '1',
    PAGODA_PDL: '0',
    PAGODA_GEMV: '0',
    PAGODA_FP8_CUBLASLT_SCALES: '0',
    PAGODA_FP8_FAST_ACCUM: '0',
    PAGODA_SIMPLE_ATTENTION: '1',
    PAGODA_TP_FORCE_NCCL: '1',
    CUDA_HOME: '/opt/cuda',
    CUDA_PATH: '/usr/local/cuda-13',
  });
  assert.deepEqual(s, {
    device: 'cpu',
    cpuThreads: 3,
    tensorParallelSize: '2',
    quantization: 'Q4_K_M',
    cuda: {
      device: 1,
      pdl: false,
      gemv: false,
      fp8CublasltScales: false,
      fp8FastAccum: false,
      simpleAttention: true,
      tpForceNccl: true,
      cudaRoots: ['/opt/cuda', '/usr/local/cuda-13'],
    },
  });
  // Only 0 turns PDL, the GEMV, cuBLASLt's FP8 scales and fast accumulation off, only 1 turns the simple attention
  // and the forced NCCL path on; a bad thread count is ignored.
  const other = settingsFromEnv({
    PAGODA_PDL: '1',
    PAGODA_GEMV: 'yes',
    PAGODA_FP8_CUBLASLT_SCALES: 'yes',
    PAGODA_FP8_FAST_ACCUM: 'yes',
    PAGODA_SIMPLE_ATTENTION: '0',
    PAGODA_TP_FORCE_NCCL: 'yes',
    PAGODA_CPU_THREADS: 'x',
  });
  assert.deepEqual(other, {
    device: undefined,
    cpuThreads: undefined,
    cuda: {
      pdl: true,
      gemv: true,
      fp8CublasltScales: true,
      fp8FastAccum: true,
      simpleAttention: false,
      tpForceNccl: false,
    },
  });
});

test('PAGODA_PREFILL_KERNEL picks the prefill attention kernel, mma or wgmma, and refuses anything else', () => {
  assert.equal(settingsFromEnv({ PAGODA_PREFILL_KERNEL: 'wgmma' }).cuda.prefillKernel, 'wgmma');
  assert.equal(settingsFromEnv({ PAGODA_PREFILL_KERNEL: 'mma' }).cuda.prefillKernel, 'mma');
  assert.equal(cudaSettings(settingsFromEnv({}).cuda).prefillKernel, 'wgmma');
  assert.throws(
    () => settingsFromEnv({ PAGODA_PREFILL_KERNEL: 'tma' }),
    (e: Error) => e instanceof UserError && e.message === 'PAGODA_PREFILL_KERNEL tma: expected mma or wgmma',
  );
});

test('PAGODA_QUANT_GEMM picks the quantized linear past 8 rows, fused (the default) or dequantize, and refuses anything else', () => {
  assert.equal(settingsFromEnv({ PAGODA_QUANT_GEMM: 'dequantize' }).cuda.quantGemm, 'dequantize');
  assert.equal(settingsFromEnv({ PAGODA_QUANT_GEMM: 'fused' }).cuda.quantGemm, 'fused');
  assert.equal(cudaSettings(settingsFromEnv({}).cuda).quantGemm, 'fused');
  assert.throws(
    () => settingsFromEnv({ PAGODA_QUANT_GEMM: 'mma' }),
    (e: Error) => e instanceof UserError && e.message === 'PAGODA_QUANT_GEMM mma: expected fused or dequantize',
  );
});

test('PAGODA_FP8_GEMV picks the FP8 decode GEMV, auto (the default), tensor-cores or cuda-cores, and refuses anything else', () => {
  assert.equal(settingsFromEnv({ PAGODA_FP8_GEMV: 'cuda-cores' }).cuda.fp8GemvRoute, 'cuda-cores');
  assert.equal(settingsFromEnv({ PAGODA_FP8_GEMV: 'tensor-cores' }).cuda.fp8GemvRoute, 'tensor-cores');
  assert.equal(settingsFromEnv({ PAGODA_FP8_GEMV: 'auto' }).cuda.fp8GemvRoute, 'auto');
  assert.equal(cudaSettings(settingsFromEnv({}).cuda).fp8GemvRoute, 'auto');
  assert.throws(
    () => settingsFromEnv({ PAGODA_FP8_GEMV: 'cuda' }),
    (e: Error) =>
      e instanceof UserError && e.message === 'PAGODA_FP8_GEMV cuda: expected auto, tensor-cores, cuda-cores',
  );
});

test('PAGODA_CUDA_DEVICE must be a device number', () => {
  assert.throws(
    () => settingsFromEnv({ PAGODA_CUDA_DEVICE: 'gpu1' }),
    (e: Error) => e instanceof UserError && e.message === 'PAGODA_CUDA_DEVICE gpu1: expected a device number',
  );
  assert.deepEqual(settingsFromEnv({ PAGODA_CUDA_DEVICE: '' }).cuda, {});
});
