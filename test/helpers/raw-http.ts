// Raw HTTP/1.1 on a plain socket, for what Node's client hides: pipelining,
// exact framing and header bytes, connection close.
import net from 'node:net';

/** Writes `text` on a fresh connection and returns every byte until the server closes. */
export function rawExchange(port: number, text: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    s.setTimeout(10_000, () => s.destroy(new Error('raw exchange timed out')));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', reject);
    s.on('end', () => {
      s.end();
      resolve(Buffer.concat(chunks));
    });
    s.write(text);
  });
}

export interface RawResponse {
  status: number;
  /** Lower-cased name → values, in order. */
  headers: Map<string, string[]>;
  body: Buffer;
  chunked: boolean;
}

/** Parses consecutive HTTP/1.1 responses; `head[i]` says whether response i answers a HEAD. */
export function parseResponses(buf: Buffer, head: boolean[]): RawResponse[] {
  const out: RawResponse[] = [];
  let pos = 0;
  for (let i = 0; pos < buf.length; i++) {
    const end = buf.indexOf('\r\n\r\n', pos);
    if (end < 0) throw new Error(`incomplete head at ${pos}: ${JSON.stringify(buf.subarray(pos).toString('latin1'))}`);
    const lines = buf.subarray(pos, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.1 (\d{3})/.exec(lines[0] ?? '');
    if (!m) throw new Error(`bad status line ${JSON.stringify(lines[0])}`);
    const headers = new Map<string, string[]>();
    for (const l of lines.slice(1)) {
      const c = l.indexOf(':');
      const name = l.slice(0, c).trim().toLowerCase();
      headers.set(name, [...(headers.get(name) ?? []), l.slice(c + 1).trim()]);
    }
    pos = end + 4;
    const status = Number(m[1]);
    const chunked = headers.get('transfer-encoding')?.[0]?.toLowerCase() === 'chunked';
    let body: Buffer = Buffer.alloc(0);
    if (head[i] === true || status === 204 || status === 304) {
      // no body
    } else if (chunked) {
      const parts: Buffer[] = [];
      for (;;) {
        const eol = buf.indexOf('\r\n', pos);
        if (eol < 0) throw new Error('incomplete chunk size line');
        const size = parseInt(buf.subarray(pos, eol).toString('latin1'), 16);
        pos = eol + 2;
        if (size === 0) {
          // trailers, then an empty line
          for (;;) {
            const tEol = buf.indexOf('\r\n', pos);
            if (tEol < 0) throw new Error('incomplete trailers');
            const empty = tEol === pos;
            pos = tEol + 2;
            if (empty) break;
          }
          break;
        }
        parts.push(buf.subarray(pos, pos + size));
        pos += size + 2;
      }
      body = Buffer.concat(parts);
    } else if (headers.has('content-length')) {
      const n = Number(headers.get('content-length')![0]);
      if (pos + n > buf.length) throw new Error(`incomplete body: ${buf.length - pos} of ${n} bytes`);
      body = buf.subarray(pos, pos + n);
      pos += n;
    } else {
      body = buf.subarray(pos);
      pos = buf.length;
    }
    out.push({ status, headers, body, chunked });
  }
  return out;
}

