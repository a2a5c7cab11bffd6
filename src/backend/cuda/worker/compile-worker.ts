// A worker thread of the compile pool: compiles the kernel modules posted to it, stores each cubin in the kernel
// cache and hands it back on its port, then bumps the shared counter the main thread may be sleeping on. In its own
// folder: tests import every module of backend/cuda wholesale, and this one runs on import.
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import type { CompileJob, CompileResult, CompilerSource } from '../compile-pool.ts';
import { writeCachedKernel } from '../kernel-cache.ts';
import { type KernelCompiler, Nvrtc } from '../nvrtc.ts';

const {
  compiler: source,
  signal,
  port,
} = workerData as {
  compiler: CompilerSource;
  signal: Int32Array;
  port: MessagePort;
};

async function open(): Promise<KernelCompiler> {
  if ('module' in source) {
    const mod = (await import(source.module)) as { createCompiler(): KernelCompiler };
    return mod.createCompiler();
  }
  return Nvrtc.open(source.nvrtcRoots);
}

const compiler: KernelCompiler | Error = await open().catch((err: Error) => err);
Atomics.add(signal, 1, 1); // started: the pool stops waiting for workers that never come up

parentPort!.on('message', (job: CompileJob) => {
  const start = performance.timeOrigin + performance.now();
  let result: CompileResult;
  try {
    if (compiler instanceof Error) throw compiler;
    const cubin = compiler.compile(job.name, job.source, job.options);
    writeCachedKernel(job.cachePath, cubin);
    result = { key: job.key, cubin, start, end: performance.timeOrigin + performance.now() };
  } catch (err) {
    const lines = (err as Error).message.split('\n');
    const line = (lines.find((l) => /\berror\b/i.test(l)) ?? lines[0]!).trim();
    result = { key: job.key, error: `kernel ${job.label} failed to compile: ${line}`, start, end: start };
  }
  port.postMessage(result);
  Atomics.add(signal, 0, 1);
  Atomics.notify(signal, 0);
});
