import assert from 'node:assert/strict';
import { test } from 'node:test';
import { probeCuda, selectDevice } from '../../src/backend/cuda/device.ts';
import { kernelCacheKey } from '../../src/backend/cuda/kernel-cache.ts';
import { CudaUnavailable } from '../../src/backend/cuda/libs.ts';
import { UserError } from '../../src/util/errors.ts';

const probe = probeCuda();
const noCuda = probe instanceof CudaUnavailable;

test('--device cpu never touches CUDA', () => {
  assert.equal(selectDevice('cpu'), 'cpu');
});

test('--device rejects unknown values with the accepted list', () => {
  assert.throws(
    () => selectDevice('gpu'),
    (e: Error) => e instanceof UserError && /auto, cuda, cpu/.test(e.message),
  );
});

test('without CUDA, --device cuda names the cause and --device auto falls back', {
  skip: !noCuda && 'CUDA works here',
}, () => {
  const reason = (probe as CudaUnavailable).reason;
  assert.match(reason, /libcuda\.so\.1|compute capability|driver|free/);
  assert.throws(
    () => selectDevice('cuda'),
    (e: Error) => e instanceof UserError && e.message.includes(reason),
  );
  const notes: string[] = [];
  assert.equal(selectDevice('auto', { note: (l) => notes.push(l) }), 'cpu');
  assert.equal(notes.length, 1);
  assert.ok(notes[0]!.includes(reason.split(': tried')[0]!), notes[0]);
});

test('kernel cache keys change with source, options, arch and compiler', () => {
  const base = kernelCacheKey('src', ['-DA=1'], 'sm_90', 'nvrtc 13.0');
  assert.equal(base, kernelCacheKey('src', ['-DA=1'], 'sm_90', 'nvrtc 13.0'));
  assert.notEqual(base, kernelCacheKey('src2', ['-DA=1'], 'sm_90', 'nvrtc 13.0'));
  assert.notEqual(base, kernelCacheKey('src', ['-DA=2'], 'sm_90', 'nvrtc 13.0'));
  assert.notEqual(base, kernelCacheKey('src', ['-DA=1'], 'sm_80', 'nvrtc 13.0'));
  assert.notEqual(base, kernelCacheKey('src', ['-DA=1'], 'sm_90', 'nvrtc 12.8'));
});
