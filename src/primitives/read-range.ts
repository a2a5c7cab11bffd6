import { readSync } from 'node:fs';

/** Reads `dst.length` bytes of the file `fd` at `position` into `dst`, looping over short reads. */
export function readRange(fd: number, dst: Uint8Array, position: number, path: string): void {
  for (let done = 0; done < dst.length; ) {
    const n = readSync(fd, dst, done, dst.length - done, position + done);
    if (n === 0)
      throw new Error(`${path}: the file ended ${dst.length - done} bytes before byte ${position + dst.length}`);
    done += n;
  }
}
