// The JS response-head parser of the upstream pool (src/worker/upstream/
// h1-response.ts) against llhttp, Node's own parser, which it stands in for:
// whatever it accepts, llhttp must accept the same way (status, reason,
// headers, keep-alive, where the body ends). It may decline anything (the
// pool then gives that response to llhttp), so it is checked on a corpus of
// ordinary heads, which it must accept, and on tens of thousands of seeded
// mutations of them, where it may only be stricter than llhttp.
import t from 'tap';
import { nativeHttpParser } from '../../src/common/node-internals.js';
import { parseSimpleHead, type SimpleHead } from '../../src/worker/upstream/h1-response.js';

const P = nativeHttpParser();

interface View {
  status: number;
  statusText: string;
  headers: string[];
  keepAlive: boolean;
  bodyLength: number;
}

/** llhttp's reading of `head` + `bodyLength` bytes, or why it refused. */
function llhttp(head: Buffer, bodyLength: number, isHead: boolean): View | string {
  const p = new P();
  p.initialize(P.RESPONSE, {}, 0, P.kLenientNone);
  let view: View | undefined;
  let extra: string[] = [];
  let body = 0;
  let completeAt = -1;
  p[P.kOnHeaders] = (h: string[]) => (extra = extra.concat(h));
  p[P.kOnHeadersComplete] = (_maj: number, _min: number, headers: string[] | undefined, _m: unknown, _u: unknown, status: number, statusText: string, _upgrade: boolean, keepAlive: boolean) => {
    view = { status, statusText, headers: extra.concat(headers ?? []), keepAlive, bodyLength: -1 };
    return isHead ? 1 : 0;
  };
  p[P.kOnBody] = (b: Buffer) => (body += b.length);
  p[P.kOnMessageComplete] = () => {
    if (completeAt < 0) completeAt = body;
  };
  const r = p.execute(Buffer.concat([head, Buffer.alloc(bodyLength, 'b')]));
  p.close();
  if (r instanceof Error) return `error ${(r as NodeJS.ErrnoException).code ?? r.message}`;
  if (!view) return 'no headers';
  if (completeAt < 0) return `message not complete after ${body} body bytes`;
  return { ...view, bodyLength: completeAt };
}

function fast(head: Buffer, isHead: boolean): SimpleHead | undefined {
  // As the pool calls it: the read holds the head and then body bytes.
  const read = Buffer.concat([head, Buffer.from('body bytes')]);
  return parseSimpleHead(read, 0, read.length, isHead);
}

const CORPUS = [
  'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nDate: Mon, 07 Dec 2026 23:00:00 GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n',
  'HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n',
  'HTTP/1.1 404 Not Found\r\ncontent-length: 9\r\nconnection: close\r\n\r\n',
  'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n',
  'HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: Keep-Alive\r\n\r\n',
  'HTTP/1.1 204 No Content\r\nx-a: 1\r\n\r\n',
  'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\nContent-Length: 10\r\n\r\n',
  'HTTP/1.1 503 \r\nretry-after: 1\r\ncontent-length: 4\r\n\r\n',
  'HTTP/1.1 200 OK\r\nX-Spaces:   padded value \t \r\nX-Empty:\r\nX-Obs: caf\xe9\r\nContent-Length: 1\r\n\r\n',
  'HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length:007\r\nConnection: keep-alive, x-other\r\n\r\n',
  'HTTP/1.1 302 Found\r\nLocation: /elsewhere?q=a:b\r\nContent-Length: 0\r\n\r\n',
  `HTTP/1.1 200 OK\r\n${Array.from({ length: 40 }, (_, i) => `x-h${i}: ${i}\r\n`).join('')}Content-Length: 3\r\n\r\n`,
];

void t.test('ordinary heads: accepted, and read exactly as llhttp reads them', async (t) => {
  for (const text of CORPUS) {
    for (const isHead of [false, true]) {
      const head = Buffer.from(text, 'latin1');
      const f = fast(head, isHead);
      if (!f) {
        t.fail(`declined: ${JSON.stringify(text)}`);
        continue;
      }
      t.equal(f.headLength, head.length, 'the head ends at its blank line');
      t.same({ status: f.status, statusText: f.statusText, headers: f.headers, keepAlive: f.keepAlive, bodyLength: f.bodyLength }, llhttp(head, f.bodyLength, isHead), `${isHead ? 'HEAD ' : ''}${JSON.stringify(text.slice(0, 40))}`);
    }
  }
});

void t.test('declined: what llhttp must decide (framing, 1xx, malformed, incomplete)', async (t) => {
  const declined = [
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n',
    'HTTP/1.0 200 OK\r\n\r\n', // read until close
    'HTTP/1.1 200 OK\r\nx: y\r\n\r\n', // read until close
    'HTTP/1.1 100 Continue\r\n\r\n',
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
    'HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n',
    'HTTP/1.1 200 OK\r\nx: a\r\n folded\r\nContent-Length: 0\r\n\r\n',
    'HTTP/1.1 200 OK\nContent-Length: 0\n\n',
    'HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n',
    'HTTP/1.1 200 OK\r\nx : y\r\nContent-Length: 0\r\n\r\n',
    'HTTP/1.1 200 OK\r\nx: a\x00b\r\nContent-Length: 0\r\n\r\n',
    'HTTP/1.1 200 OK\r\nx: a\x7fb\r\nContent-Length: 0\r\n\r\n',
    'HTTP/1.1 200 OK\r\nProxy-Connection: close\r\nContent-Length: 0\r\n\r\n',
    'HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n',
    'HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n',
    'HTTP/1.1 600 Odd\r\nContent-Length: 0\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n', // incomplete
    'NOT HTTP\r\n\r\n',
    `HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(20_000)}\r\nContent-Length: 0\r\n\r\n`, // over the header size limit
  ];
  for (const text of declined) t.equal(fast(Buffer.from(text, 'latin1'), false), undefined, JSON.stringify(text.slice(0, 60)));
  // The blank line must lie within the read: bytes past `end` are stale.
  const read = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', 'latin1');
  t.equal(parseSimpleHead(read, 0, read.length - 1, false), undefined, 'a head that ends past the read is incomplete');
  t.ok(parseSimpleHead(read, 0, read.length, false), 'and complete when it ends within');
});

void t.test('Connection tokens: read as llhttp reads them, no-break spaces included', async (t) => {
  // llhttp ignores spaces around a token and nothing else: a no-break space
  // (0xA0, which String.prototype.trim() drops) makes "keep-alive" another token.
  for (const value of ['\xa0keep-alive, x', 'x, \xa0keep-alive', 'keep-alive\xa0, x', '\xa0close, x', 'x ,keep-alive', 'keep-alive , x', ',keep-alive', 'x,,keep-alive', 'KEEP-ALIVE', 'close , keep-alive', 'keep-alivex, y']) {
    for (const version of ['1.0', '1.1']) {
      const head = Buffer.from(`HTTP/${version} 200 OK\r\nContent-Length: 0\r\nConnection: ${value}\r\n\r\n`, 'latin1');
      const f = fast(head, false);
      if (!f) {
        t.fail(`declined: ${JSON.stringify(value)}`);
        continue;
      }
      t.equal(f.keepAlive, (llhttp(head, 0, false) as View).keepAlive, `HTTP/${version} Connection: ${JSON.stringify(value)}`);
    }
  }
});

/** mulberry32: a small seeded PRNG, so a failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

void t.test('mutated heads: whatever the JS parser accepts, llhttp reads the same way', async (t) => {
  const seed = Number(process.env['MOSN_FUZZ_SEED'] ?? 20261207);
  const rand = prng(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)]!;
  const bytes = [0x0d, 0x0a, 0x20, 0x09, 0x3a, 0x00, 0x7f, 0x80, 0xa0, 0xff, 0x2c, 0x30, 0x39, 0x41, 0x61, 0x22, 0x2f, 0x2e, 0x3b, 0x3d, 0x0b, 0x0c];
  const words = ['Content-Length: 5\r\n', 'Transfer-Encoding: chunked\r\n', 'Connection: close\r\n', 'Connection: keep-alive\r\n', '\r\n', ' ', 'HTTP/1.1 ', 'close', '0', '10'];
  let accepted = 0;
  let mismatches = 0;
  const runs = 30_000;
  for (let n = 0; n < runs; n++) {
    const b = [...Buffer.from(pick(CORPUS), 'latin1')];
    const edits = 1 + Math.floor(rand() * 3);
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(rand() * b.length);
      const op = rand();
      if (op < 0.3) b.splice(at, 1);
      else if (op < 0.6) b[at] = pick(bytes);
      else if (op < 0.85) b.splice(at, 0, pick(bytes));
      else b.splice(at, 0, ...Buffer.from(pick(words), 'latin1'));
    }
    const head = Buffer.from(b);
    const isHead = rand() < 0.2;
    const f = fast(head, isHead);
    if (!f) continue;
    accepted++;
    const mine = { status: f.status, statusText: f.statusText, headers: f.headers, keepAlive: f.keepAlive, bodyLength: f.bodyLength };
    // llhttp sees exactly the head the JS parser took, then the body it expects.
    const theirs = llhttp(head.subarray(0, f.headLength), f.bodyLength, isHead);
    if (JSON.stringify(mine) !== JSON.stringify(theirs) && mismatches++ < 5) {
      t.fail(`seed ${seed} run ${n}: ${JSON.stringify(head.toString('latin1'))}`, { found: mine, wanted: theirs });
    }
  }
  t.equal(mismatches, 0, `no head read differently (seed ${seed}, ${runs} mutations)`);
  t.ok(accepted > runs / 10, `the JS parser accepted ${accepted} of them (a parser that declines everything would pass the rest)`);
});
