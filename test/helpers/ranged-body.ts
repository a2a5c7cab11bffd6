import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * Serves `content` as a download server does: `Range: bytes=N-` gives 206 from N (416 past the end), HEAD only the
 * headers. Faults for the tests: `corrupt` flips the last byte; `cutAfter` sends that many bytes, then drops the
 * connection mid-transfer.
 */
export function sendRangedBody(
  req: IncomingMessage,
  res: ServerResponse,
  content: Buffer,
  faults: { corrupt?: boolean; cutAfter?: number } = {},
): void {
  if (faults.corrupt) {
    content = Buffer.from(content);
    content[content.length - 1]! ^= 0xff;
  }
  let start = 0;
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (range) {
    start = Number(range[1]);
    if (start >= content.length) {
      res.writeHead(416, { 'content-range': `bytes */${content.length}` }).end();
      return;
    }
    res.writeHead(206, {
      'content-length': String(content.length - start),
      'content-range': `bytes ${start}-${content.length - 1}/${content.length}`,
    });
  } else {
    res.writeHead(200, { 'content-length': String(content.length), 'accept-ranges': 'bytes' });
  }
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  if (faults.cutAfter !== undefined) {
    // Give the client time to take the bytes sent (an early end discards what it has not read yet), then
    // half-close the connection.
    res.write(content.subarray(start, start + faults.cutAfter), () => setTimeout(() => res.socket?.end(), 150));
    return;
  }
  res.end(content.subarray(start));
}
