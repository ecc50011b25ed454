// The client side of an HTTP listener, byte for byte: malformed, oversized
// and slow request heads (400 / 431 / 408), the keep-alive idle timeout,
// HTTP/1.0 clients, pipelining with bodies, an early response to a request
// whose body is still arriving, CONNECT, and the headers every response
// carries. Real mosn process, raw sockets.
import net from 'node:net';
import t from 'tap';
import { httpBackend } from '../helpers/backends.js';
import { startMosn } from '../helpers/mosn.js';
import { parseResponses, rawExchange } from '../helpers/raw-http.js';
import { waitFor } from '../helpers/wait.js';

/** A socket that collects everything it receives and notes when the server closed. */
function rawClient(port: number): Promise<{ s: net.Socket; got: () => Buffer; closed: () => boolean; openedAt: number; closedAt: () => number }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let closed = false;
    let closedAt = 0;
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => undefined);
    s.on('close', () => {
      closed = true;
      closedAt = Date.now();
    });
    s.once('connect', () => resolve({ s, got: () => Buffer.concat(chunks), closed: () => closed, openedAt: Date.now(), closedAt: () => closedAt }));
    s.once('error', reject);
  });
}

void t.test('http downstream', { timeout: 60_000 }, async (t) => {
  const backend = await httpBackend((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.url === '/chunked') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('part-one;');
        setImmediate(() => res.end('part-two'));
        return;
      }
      res.setHeader('content-type', 'text/plain');
      res.end(`${req.method} ${req.url} ${body.length}`);
    });
  });
  t.teardown(() => backend.close());

  const m = await startMosn({
    workers: 1,
    listeners: [
      {
        name: 'web',
        address: '127.0.0.1:0',
        timeouts: { idle: '1500ms', request_headers: '400ms' },
        virtual_hosts: [
          {
            name: 'any',
            domains: ['*'],
            routes: [
              { name: 'direct', match: { prefix: '/direct' }, direct_response: { status: 200, body: 'direct' } },
              { name: 'default', match: { prefix: '/' }, route: { cluster: 'be' } },
            ],
          },
        ],
      },
    ],
    clusters: [{ name: 'be', endpoints: [backend.address] }],
  });
  t.teardown(() => m.kill());
  const port = m.port('web');

  void t.test('a malformed request line: 400 with the error code, logged with the parser detail, connection closed', async (t) => {
    const buf = await rawExchange(port, 'GET /x HTTP/1.1 junk\r\nHost: a\r\n\r\n');
    const [r] = parseResponses(buf, [false]);
    t.equal(r?.status, 400);
    t.same(r?.headers.get('x-mosn-error'), ['MOSN_ERR_BAD_REQUEST']);
    t.same(r?.headers.get('connection'), ['close']);
    const line = await m.accessLine((l) => l['error'] === 'MOSN_ERR_BAD_REQUEST' && l['status'] === 400);
    t.match(String(line['detail']), /^HPE_/, `the parser's code is logged (${String(line['detail'])})`);
  });

  void t.test('a request head over the size limit: 431', async (t) => {
    const buf = await rawExchange(port, `GET /big HTTP/1.1\r\nHost: a\r\nX-Big: ${'x'.repeat(20_000)}\r\n\r\n`);
    const [r] = parseResponses(buf, [false]);
    t.equal(r?.status, 431);
    t.same(r?.headers.get('x-mosn-error'), ['MOSN_ERR_BAD_REQUEST']);
  });

  void t.test('a request head that does not finish in time: 408, also for a connection that sends nothing', async (t) => {
    const slow = await rawClient(port);
    slow.s.write('GET /slow HTTP/1.1\r\nHost: a\r\n');
    const silent = await rawClient(port);
    await waitFor(() => slow.closed() && silent.closed(), { timeoutMs: 10_000, what: 'both connections to be closed by the proxy' });
    for (const [what, c] of [
      ['partial head', slow],
      ['silent', silent],
    ] as const) {
      const [r] = parseResponses(c.got(), [false]);
      t.equal(r?.status, 408, `${what}: 408`);
      t.same(r?.headers.get('x-mosn-error'), ['MOSN_ERR_DOWNSTREAM_HEADERS_TIMEOUT'], `${what}: error code`);
      t.ok(c.closedAt() - c.openedAt >= 350, `${what}: not before the 400 ms limit (${c.closedAt() - c.openedAt} ms)`);
    }
  });

  void t.test('a keep-alive connection idle past the idle timeout is closed; its responses said so', async (t) => {
    const c = await rawClient(port);
    c.s.write('GET /direct HTTP/1.1\r\nHost: a\r\n\r\n');
    await waitFor(() => c.got().includes('direct'), { timeoutMs: 5000, what: 'the response' });
    const answeredAt = Date.now();
    const [r] = parseResponses(c.got(), [false]);
    t.same(r?.headers.get('connection'), ['keep-alive']);
    t.same(r?.headers.get('keep-alive'), ['timeout=1']);
    t.ok(r?.headers.get('date')?.[0]?.endsWith('GMT'), 'a Date header');
    await waitFor(() => c.closed(), { timeoutMs: 10_000, what: 'the idle connection to be closed' });
    t.ok(c.closedAt() - answeredAt >= 1300, `closed after the 1.5 s idle timeout, not before (${c.closedAt() - answeredAt} ms)`);
  });

  void t.test('HTTP/1.0: a body without length ends with the connection; keep-alive works when asked for', async (t) => {
    const buf = await rawExchange(port, 'GET /chunked HTTP/1.0\r\nHost: a\r\n\r\n');
    const text = buf.toString('latin1');
    t.match(text, /^HTTP\/1\.1 200 /);
    t.notMatch(text, /transfer-encoding/i, 'no chunked encoding for an HTTP/1.0 client');
    t.match(text, /connection: close\r\n/i);
    t.ok(text.endsWith('\r\n\r\npart-one;part-two'), 'the body is everything until the close');

    const c = await rawClient(port);
    c.s.write('GET /one HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n');
    await waitFor(() => c.got().includes('GET /one 0'), { timeoutMs: 5000, what: 'the first response' });
    t.match(c.got().toString('latin1'), /connection: keep-alive\r\n/i);
    c.s.write('GET /two HTTP/1.0\r\nHost: a\r\n\r\n');
    await waitFor(() => c.closed(), { timeoutMs: 5000, what: 'the close after the second response' });
    const rs = parseResponses(c.got(), [false, false]);
    t.same(
      rs.map((x) => x.body.toString()),
      ['GET /one 0', 'GET /two 0'],
      'both answered on one connection',
    );
  });

  void t.test('pipelined requests, one with a body, are answered in order', async (t) => {
    const body = 'x'.repeat(70_000);
    const buf = await rawExchange(
      port,
      'GET /p1 HTTP/1.1\r\nHost: a\r\n\r\n' +
        `POST /p2 HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\n\r\n${body}` +
        'GET /direct HTTP/1.1\r\nHost: a\r\n\r\n' +
        'GET /p4 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
    );
    const rs = parseResponses(buf, [false, false, false, false]);
    t.same(
      rs.map((r) => r.body.toString()),
      ['GET /p1 0', `POST /p2 ${body.length}`, 'direct', 'GET /p4 0'],
    );
    t.same(rs[3]?.headers.get('connection'), ['close']);
  });

  void t.test('an early response to a request whose body is still coming: the body is dropped, the connection stays usable', async (t) => {
    const c = await rawClient(port);
    c.s.write('POST /direct HTTP/1.1\r\nHost: a\r\nContent-Length: 200000\r\n\r\n');
    await waitFor(() => c.got().includes('direct'), { timeoutMs: 5000, what: 'the early response' });
    c.s.write('y'.repeat(200_000));
    c.s.write('GET /after HTTP/1.1\r\nHost: a\r\n\r\n');
    await waitFor(() => c.got().includes('GET /after 0'), { timeoutMs: 5000, what: 'the next response on the same connection' });
    const rs = parseResponses(c.got(), [false, false]);
    t.same(
      rs.map((r) => r.status),
      [200, 200],
    );
    t.notOk(c.closed(), 'still open');
    c.s.destroy();
  });

  void t.test('Expect: 100-continue on a pipelined request comes only when it is its turn', async (t) => {
    const buf = await rawExchange(
      port,
      'GET /first HTTP/1.1\r\nHost: a\r\n\r\n' + 'POST /second HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc',
    );
    const text = buf.toString('latin1');
    const first = text.indexOf('GET /first 0');
    const cont = text.indexOf('HTTP/1.1 100 Continue');
    t.ok(first >= 0 && cont > first, 'the interim response follows the first response');
    t.ok(text.endsWith('POST /second 3'), 'the body reached the upstream');
  });

  void t.test('CONNECT is refused with 501', async (t) => {
    const buf = await rawExchange(port, 'CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n');
    const [r] = parseResponses(buf, [false]);
    t.equal(r?.status, 501);
  });

  void t.test('nothing is left in the registry', async (t) => {
    await waitFor(
      async () => {
        const s = await m.refresh();
        return s.connections['active'] === 0;
      },
      { timeoutMs: 5000, what: 'every connection to be gone' },
    );
    t.pass('empty');
  });
});
