import type { DevPtr } from './driver.ts';

/** A kernel parameter's C type: any pointer, `int`, `unsigned int`, `long long` or `float`. */
export type ArgType = 'ptr' | 'i32' | 'u32' | 'i64' | 'f32';

/**
 * A kernel's parameters in their `.cu` order, each named as there in camelCase (`block_tables` -> `blockTables`).
 * test/backend/kernel-signatures.test.ts holds every declaration to its `extern "C" __global__` signature.
 */
export type ArgList = Readonly<Record<string, ArgType>>;

/** The values of one launch: device addresses for pointers, numbers for the rest. */
export type ArgValues<A extends ArgList> = { readonly [K in keyof A]: A[K] extends 'ptr' ? DevPtr : number };

/** How the driver packs each type (driver.ts `launch`): p 8-byte address, i 4-byte int, u 8-byte int, f float. */
const KIND: Record<ArgType, string> = { ptr: 'p', i32: 'i', u32: 'i', i64: 'u', f32: 'f' };

/** One `extern "C" __global__` kernel of `kernels/<file>.cu`: its name and typed parameters. */
export class KernelDecl<A extends ArgList = ArgList> {
  /** The parameter names in order: a launch passes `names.map((n) => values[n])`. */
  readonly names: readonly string[];
  /** The driver's packing string, one letter per parameter. */
  readonly kinds: string;

  constructor(
    readonly file: string,
    readonly name: string,
    readonly args: A,
  ) {
    this.names = Object.keys(args);
    this.kinds = this.names.map((n) => KIND[args[n]!]).join('');
  }
}

/** Declares `name` of `kernels/<file>.cu` with its parameters (types kept literal for the launch values' type). */
export function declareKernel<const A extends ArgList>(file: string, name: string, args: A): KernelDecl<A> {
  return new KernelDecl(file, name, args);
}

/**
 * A kernel built for 1, 2, 4 and 8 rows (`<name>_t1` .. `_t8` of `kernels/<file>.cu`, a build per row count's power
 * of two), by that power of two.
 */
export function declareByRows<const A extends ArgList>(file: string, name: string, args: A) {
  return {
    1: declareKernel(file, `${name}_t1`, args),
    2: declareKernel(file, `${name}_t2`, args),
    4: declareKernel(file, `${name}_t4`, args),
    8: declareKernel(file, `${name}_t8`, args),
  };
}

/** A kernel ready to launch with named arguments. */
export interface Kernel<A extends ArgList = ArgList> {
  readonly name: string;
  /** On the driver's stream. */
  launch(
    grid: readonly [number, number?, number?],
    block: readonly [number, number?, number?],
    args: ArgValues<A>,
    smem?: number,
  ): void;
  /** Registers per thread and local (spilled) bytes per thread of the compiled kernel (the GEMV sweep prints them). */
  resources(): { registers: number; localBytes: number };
}
