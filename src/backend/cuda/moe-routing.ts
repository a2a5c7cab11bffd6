import type { Tensor } from '../backend.ts';
import type { MoeSpec } from '../moe-spec.ts';
import type { CudaContext } from './context.ts';
import type { DevPtr } from './driver.ts';
import { declareKernel } from './kernel.ts';
import type { CudaLinear } from './linear.ts';
import { CudaTensor, DTYPE_BYTES, rowsCols } from './tensor.ts';

// kernels/moe.cu
const ROUTE_ARGS = { logits: 'ptr', tokens: 'i32', experts: 'i32', k: 'i32', norm: 'i32' } as const;
export const MOE_ROUTE = declareKernel('moe', 'moe_route', { ids: 'ptr', weights: 'ptr', ...ROUTE_ARGS });
const GROUP_OUT = { offsets: 'ptr', pairs: 'ptr', pos: 'ptr', active: 'ptr' } as const;
export const MOE_GROUP = declareKernel('moe', 'moe_group', { ...GROUP_OUT, ids: 'ptr', n: 'i32', experts: 'i32' });
/** A decode step's routing and grouping in one launch (one block). */
export const MOE_ROUTE_GROUP = declareKernel('moe', 'moe_route_group', {
  ids: 'ptr',
  weights: 'ptr',
  ...GROUP_OUT,
  ...ROUTE_ARGS,
});
/** A decode step's router logits, then in its last block moe_route_group's work (`done`: launchCounters). */
export const MOE_ROUTER_ROUTE = declareKernel('moe', 'moe_router_route', {
  logits: 'ptr',
  ids: 'ptr',
  weights: 'ptr',
  ...GROUP_OUT,
  done: 'ptr',
  x: 'ptr',
  router: 'ptr',
  tokens: 'i32',
  hidden: 'i32',
  experts: 'i32',
  k: 'i32',
  norm: 'i32',
});

/** moe_group's shared table holds one entry per expert. */
export const MAX_EXPERTS = 1024;
/**
 * Tokens up to which a step routes and groups in one launch and multiplies through moe_gemv (a decode step): an expert
 * then has at most this many rows, each weight row read once for all of them (TMAX = tokens rounded up to a power of
 * two, its accumulators in registers). Past it the tiles' weight reuse wins. moe_router_route's ROUTER_TOKENS.
 */
export const MOE_GEMV_MAX_TOKENS = 8;
/** moe_router_route's experts per block (ROUTER_ROWS: 8 warps, ROUTER_SPLIT 4 of them per expert). */
const ROUTER_ROWS = 2;

/** Routing and grouping on the device: int32 / float32 arrays of the arena. */
export interface MoeRouting {
  /** [T, k] each token's experts, most probable first, and their routing weights (float). */
  ids: DevPtr;
  weights: DevPtr;
  /** [E + 1] each expert's first grouped row; [T k] the pair (token * k + slot) of each grouped row; its inverse. */
  offsets: DevPtr;
  pairs: DevPtr;
  pos: DevPtr;
  /** [min(T k, E)] the experts with rows, ascending, then -1: moe_gemv's blocks. */
  active: DevPtr;
}

function routingBuffers(ctx: CudaContext, T: number, E: number, k: number): MoeRouting {
  const n = T * k;
  const ints = (count: number) => ctx.arena.alloc(count * 4);
  return {
    ids: ints(n),
    weights: ints(n),
    offsets: ints(E + 1),
    pairs: ints(n),
    pos: ints(n),
    active: ints(Math.min(n, E)),
  };
}

/**
 * kernels/moe.cu's top-k routing over router logits [T, E] and the grouping of the (token, slot) pairs by expert: one
 * launch of one block for a decode step's few tokens, else a warp per token then one block.
 */
export function routeAndGroup(ctx: CudaContext, logits: DevPtr, T: number, E: number, spec: MoeSpec): MoeRouting {
  const k = spec.topK;
  const r = routingBuffers(ctx, T, E, k);
  const route = { logits, tokens: T, experts: E, k, norm: spec.normTopK ? 1 : 0 };
  if (T <= MOE_GEMV_MAX_TOKENS) {
    ctx.kernel(MOE_ROUTE_GROUP).launch([1], [32 * MOE_GEMV_MAX_TOKENS], { ...r, ...route });
  } else {
    ctx.kernel(MOE_ROUTE).launch([Math.ceil(T / 8)], [256], { ids: r.ids, weights: r.weights, ...route });
    ctx.kernel(MOE_GROUP).launch([1], [1024], { ...r, ids: r.ids, n: T * k, experts: E });
  }
  return r;
}

/**
 * The router's logits of x [T, H] and the routing and grouping: for a decode step with the router in the storage
 * type (hidden a whole number of 16-byte loads) one launch of moe_router_route, whose last block routes (a launch
 * fewer than the linear layer then moe_route_group); otherwise the linear layer then routeAndGroup. With the routing,
 * the logits [T, E] in the storage type.
 */
export function routeTokens(
  ctx: CudaContext,
  linears: CudaLinear,
  x: CudaTensor,
  router: Tensor,
  E: number,
  spec: MoeSpec,
): MoeRouting & { logits: CudaTensor } {
  const [T, H] = rowsCols(x);
  const fused =
    T <= MOE_GEMV_MAX_TOKENS &&
    router instanceof CudaTensor &&
    router.dtype === ctx.dtype &&
    (H * DTYPE_BYTES[ctx.dtype]) % 16 === 0;
  if (!fused) {
    const logits = ctx.own(linears.linear(x, router));
    return { logits, ...routeAndGroup(ctx, logits.ptr, T, E, spec) };
  }
  const k = spec.topK;
  const logits = ctx.empty([T, E]);
  const r = routingBuffers(ctx, T, E, k);
  const done = launchCounters(ctx, 1);
  ctx.kernel(MOE_ROUTER_ROUTE).launch([Math.ceil(E / ROUTER_ROWS)], [256], {
    logits: logits.ptr,
    ...r,
    done,
    x: x.ptr,
    router: router.ptr,
    tokens: T,
    hidden: H,
    experts: E,
    k,
    norm: spec.normTopK ? 1 : 0,
  });
  return { logits, ...r };
}

const counters = new WeakMap<CudaContext, { ptr: DevPtr; count: number }>();

/**
 * `count` zeroed uint32 counters of the "last block done" kernels (moe_router_route, moe_down_combine), kept with the
 * weights: each kernel's last block sets its counter back to zero before it exits, and every counter access follows
 * PDL_ENTER (the wait for the previous grid), so kernels that overlap under PDL still touch them in launch order and
 * may share them. Allocated (or grown) on a step's first use, which runs eagerly before any graph is captured.
 */
export function launchCounters(ctx: CudaContext, count: number): DevPtr {
  const have = counters.get(ctx);
  if (have && have.count >= count) return have.ptr;
  const zeros = new Uint32Array(count);
  const ptr = ctx.weights.alloc(zeros.byteLength);
  ctx.drv.upload(ptr, zeros);
  counters.set(ctx, { ptr, count });
  return ptr;
}
