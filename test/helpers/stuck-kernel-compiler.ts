// A compiler module that never finishes loading: its worker never comes up (a worker that cannot start).
await new Promise(() => {});
export function createCompiler(): never {
  throw new Error('unreachable');
}
