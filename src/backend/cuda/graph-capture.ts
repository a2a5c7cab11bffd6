import type { CudaDriver, Handle } from './driver.ts';

/**
 * Records the stream's work done by `body` into an executable graph (relaxed capture mode). If `body` throws, its
 * error is the one reported, not the capture's.
 */
export function captureGraph(drv: CudaDriver, body: () => void): Handle {
  drv.check(drv.api.cuStreamBeginCapture(drv.stream, 2), 'cuStreamBeginCapture'); // RELAXED
  let graph: Handle = null;
  let failed = true;
  try {
    body();
    failed = false;
  } finally {
    const g = [null];
    const rc = drv.api.cuStreamEndCapture(drv.stream, g);
    graph = g[0];
    if (failed) {
      if (graph) drv.api.cuGraphDestroy(graph);
    } else drv.check(rc, 'cuStreamEndCapture');
  }
  const exec = [null];
  drv.check(drv.api.cuGraphInstantiate(exec, graph, 0n), 'cuGraphInstantiateWithFlags');
  drv.check(drv.api.cuGraphDestroy(graph), 'cuGraphDestroy');
  return exec[0];
}

export function replayGraph(drv: CudaDriver, exec: Handle): void {
  drv.check(drv.api.cuGraphLaunch(exec, drv.stream), 'cuGraphLaunch');
}

export function destroyGraph(drv: CudaDriver, exec: Handle): void {
  drv.check(drv.api.cuGraphExecDestroy(exec), 'cuGraphExecDestroy');
}
