// The upstream HTTP/1.1 pool (src/worker/upstream/h1-pool.ts) against real
// servers on loopback: connection reuse and its limits, the cases where a
// connection must not be reused, and what an exchange sees. The proxy-level
// behaviour (status codes, timeouts as 504s) is in http-proxy and
// http-errors tests.
import http from 'node:http';
import net from 'node:net';
import t from 'tap';
import { H1Pool, type UpstreamError, type UpstreamRequest } from '../../src/worker/upstream/h1-pool.js';
import { waitFor } from '../helpers/wait.js';

interface Result {
  status: number;
  headers: string[];
  body: string;
  /** The chunks as onData got them (not copied: a view into a reused buffer would change later). */
  chunks: Buffer[];
}

function fetchVia(pool: H1Pool, req: Partial<UpstreamRequest> = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    let status = 0;
    let headers: string[] = [];
    const chunks: Buffer[] = [];
    pool.dispatch(
      { method: 'GET', path: '/', headers: [], body: null, ...req },
      {
        onHeaders: (s, _text, raw) => {
          status = s;
          headers = raw;
        },
        onData: (c) => {
          chunks.push(c);
          return true;
        },
        onComplete: () => resolve({ status, headers, body: Buffer.concat(chunks).toString(), chunks }),
        onError: (err: UpstreamError) => reject(err),
      },
    );
  });
}

function options(port: number, extra: Partial<ConstructorParameters<typeof H1Pool>[0]> = {}): ConstructorParameters<typeof H1Pool>[0] {
  return { host: '127.0.0.1', port, connections: 8, idleTimeout: 60_000, headersTimeout: 5000, connectTimeout: 2000, ...extra };
}

/** A raw TCP server answering each connection's requests with `answer(n)` (n = request number on the connection). */
async function rawServer(answer: (sock: net.Socket, n: number, request: string) => void): Promise<{ port: number; accepted: () => number; close: () => void }> {
  let accepted = 0;
  const socks = new Set<net.Socket>();
  const srv = net.createServer((sock) => {
    accepted++;
    socks.add(sock);
    sock.on('close', () => socks.delete(sock));
    sock.on('error', () => undefined);
    let n = 0;
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      let i: number;
      while ((i = buf.indexOf('\r\n\r\n')) >= 0) {
        const head = buf.slice(0, i);
        buf = buf.slice(i + 4);
        answer(sock, n++, head);
      }
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    accepted: () => accepted,
    close: () => {
      for (const s of socks) s.destroy();
      srv.close();
    },
  };
}

void t.test('sequential requests reuse one connection; the request head is written as given', async (t) => {
  const heads: string[] = [];
  const s = await rawServer((sock, n, head) => {
    heads.push(head);
    sock.write(`HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-n: ${n}\r\n\r\nok`);
  });
  t.teardown(s.close);
  const pool = new H1Pool(options(s.port));
  t.teardown(() => pool.destroy());
  for (let i = 0; i < 5; i++) {
    const r = await fetchVia(pool, { path: `/r${i}?q=1`, headers: ['X-Case', 'Kept'] });
    t.equal(r.status, 200);
    t.equal(r.body, 'ok');
    t.same(r.headers.slice(-2), ['x-n', String(i)], 'the nth request on the same connection');
  }
  t.equal(s.accepted(), 1, 'one upstream connection');
  t.equal(heads[2], `GET /r2?q=1 HTTP/1.1\r\nX-Case: Kept\r\nhost: 127.0.0.1:${s.port}`, 'header case kept, host added when missing');
});

void t.test('no more than `connections` at once; the rest wait their turn, in order', async (t) => {
  let open = 0;
  let peak = 0;
  const srv = http.createServer((req, res) => {
    open++;
    peak = Math.max(peak, open);
    setTimeout(() => {
      open--;
      res.end(req.url);
    }, 30);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => srv.close());
  const pool = new H1Pool(options((srv.address() as net.AddressInfo).port, { connections: 2 }));
  t.teardown(() => pool.destroy());
  const order: string[] = [];
  const all = await Promise.all(
    Array.from({ length: 6 }, (_, i) =>
      fetchVia(pool, { path: `/${i}` }).then((r) => {
        order.push(r.body);
        return r;
      }),
    ),
  );
  t.ok(all.every((r, i) => r.status === 200 && r.body === `/${i}`), 'every request answered');
  t.equal(peak, 2, 'at most 2 requests at the upstream at once');
  t.same(order.slice(0, 2).sort(), ['/0', '/1'], 'first come, first served');
  t.equal(pool.stats.open, 2);
  srv.closeAllConnections();
});

void t.test('a connection the upstream closed while idle is not reused', async (t) => {
  const s = await rawServer((sock) => {
    sock.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\nok');
  });
  t.teardown(s.close);
  const pool = new H1Pool(options(s.port));
  t.teardown(() => pool.destroy());
  t.equal((await fetchVia(pool)).body, 'ok');
  await waitFor(() => pool.stats.open === 0, { what: 'the closed connection to leave the pool' });
  t.equal((await fetchVia(pool)).body, 'ok', 'the next request gets a new connection');
  t.equal(s.accepted(), 2);
});

void t.test('Connection: close and HTTP/1.0 responses are not reused; a read-until-close body completes', async (t) => {
  const s = await rawServer((sock, _n, head) => {
    if (head.startsWith('GET /close ')) sock.write('HTTP/1.1 200 OK\r\ncontent-length: 1\r\nconnection: close\r\n\r\na');
    else sock.end('HTTP/1.0 200 OK\r\n\r\nuntil close');
  });
  t.teardown(s.close);
  const pool = new H1Pool(options(s.port));
  t.teardown(() => pool.destroy());
  t.equal((await fetchVia(pool, { path: '/close' })).body, 'a');
  const r = await fetchVia(pool, { path: '/eof' });
  t.equal(r.body, 'until close', 'body without a length ends at EOF');
  t.equal(s.accepted(), 2, 'a new connection each time');
  await waitFor(() => pool.stats.open === 0, { what: 'both connections closed' });
});

void t.test("the upstream's Keep-Alive: timeout=N closes the pooled connection before the upstream would", async (t) => {
  const closedBy: string[] = [];
  const srv = http.createServer((_req, res) => res.end('ok'));
  srv.keepAliveTimeout = 2000; // Node announces Keep-Alive: timeout=2
  srv.on('connection', (sock: net.Socket) => sock.on('end', () => closedBy.push('client')));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => srv.close());
  const pool = new H1Pool(options((srv.address() as net.AddressInfo).port, { idleTimeout: 60_000 }));
  t.teardown(() => pool.destroy());
  const r = await fetchVia(pool);
  t.match(r.headers.join('\n'), /Keep-Alive\ntimeout=2/i);
  await waitFor(() => closedBy.length > 0 || pool.stats.open === 0, { timeoutMs: 5000, what: 'the pooled connection to close' });
  await waitFor(() => closedBy.length > 0, { timeoutMs: 1000, what: "the server to see the pool's FIN" });
  t.same(closedBy, ['client'], 'the pool closed first (1 s before the upstream would)');
});

void t.test('1xx interim responses are skipped; HEAD responses have no body', async (t) => {
  const s = await rawServer((sock, _n, head) => {
    if (head.startsWith('HEAD')) sock.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n');
    else sock.write('HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfinal');
  });
  t.teardown(s.close);
  const pool = new H1Pool(options(s.port));
  t.teardown(() => pool.destroy());
  const r = await fetchVia(pool);
  t.equal(r.status, 200);
  t.equal(r.body, 'final');
  const h = await fetchVia(pool, { method: 'HEAD' });
  t.equal(h.status, 200);
  t.equal(h.body, '');
  t.equal((await fetchVia(pool)).body, 'final', 'the connection is still in step after HEAD');
  t.equal(s.accepted(), 1);
});

void t.test('errors: refused, garbage, closed mid-body, headers timeout; abort while queued', async (t) => {
  const dead = net.createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
  const deadPort = (dead.address() as net.AddressInfo).port;
  await new Promise<void>((r) => dead.close(() => r()));
  const refused = new H1Pool(options(deadPort));
  await t.rejects(fetchVia(refused), { code: 'ECONNREFUSED' });

  const s = await rawServer((sock, _n, head) => {
    if (head.startsWith('GET /garbage')) sock.write('NOT HTTP\r\n\r\n');
    else if (head.startsWith('GET /cut')) sock.end('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort');
    // /silent: never answers
  });
  t.teardown(s.close);
  const pool = new H1Pool(options(s.port, { headersTimeout: 200, connections: 1 }));
  t.teardown(() => pool.destroy());
  await t.rejects(fetchVia(pool, { path: '/garbage' }), { code: 'MOSN_UPSTREAM_PROTOCOL' });
  await t.rejects(fetchVia(pool, { path: '/cut' }), { code: 'MOSN_UPSTREAM_CLOSED' });
  const silent = fetchVia(pool, { path: '/silent' });
  // Queued behind /silent (one connection): aborted before it is ever sent.
  let queuedError: UpstreamError | undefined;
  const ex = pool.dispatch({ method: 'GET', path: '/queued', headers: [], body: null }, {
    onHeaders: () => undefined,
    onData: () => true,
    onComplete: () => undefined,
    onError: (e) => (queuedError = e),
  });
  ex.abort(Object.assign(new Error('gave up'), { code: 'TEST_ABORT' }));
  t.equal(queuedError?.code, 'TEST_ABORT', 'the aborted exchange hears its own error');
  await t.rejects(silent, { code: 'MOSN_UPSTREAM_HEADERS_TIMEOUT' });
  t.equal(pool.stats.queued, 0, 'nothing left queued');
});

void t.test('bytes an upstream sends beyond its response never reach the next request', async (t) => {
  // The first request on each connection is answered with a second, unasked
  // response behind it: in the same write (/same), or a moment later while
  // the connection sits idle (/later). Handing either to the next exchange
  // would answer it with the wrong response (response desync).
  const s = await rawServer((sock, n, head) => {
    const path = head.split(' ')[1];
    if (n > 0) sock.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfresh');
    else if (path === '/same') sock.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nstale');
    else if (path === '/later') {
      sock.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      setTimeout(() => sock.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nstale'), 50);
    } else sock.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfresh');
  });
  t.teardown(s.close);

  // /same, with the next request already queued (one connection): it would
  // be sent on that connection the moment the first response completes.
  const pool = new H1Pool(options(s.port, { connections: 1 }));
  t.teardown(() => pool.destroy());
  const first = fetchVia(pool, { path: '/same' });
  const next = fetchVia(pool, { path: '/next' });
  t.equal((await first).body, 'ok');
  t.equal((await next).body, 'fresh', 'the queued request gets its own response');
  t.equal(s.accepted(), 2, 'on a new connection');

  // /later: the extra bytes arrive on an idle pooled connection.
  const pool2 = new H1Pool(options(s.port, { connections: 1 }));
  t.teardown(() => pool2.destroy());
  const before = s.accepted();
  t.equal((await fetchVia(pool2, { path: '/later' })).body, 'ok');
  await waitFor(() => pool2.stats.idle === 0, { timeoutMs: 5000, what: 'the connection that sent unasked bytes to leave the pool' });
  t.equal((await fetchVia(pool2, { path: '/next' })).body, 'fresh', 'the next request gets its own response');
  t.equal(s.accepted() - before, 2, 'on a new connection');
});

void t.test('simple and other responses on one connection, whole or in parts; chunks stay intact', async (t) => {
  // Simple responses (a plain head and a content-length body) are parsed in
  // JS, the rest by llhttp, each from its first byte; reads land in one
  // buffer that every upstream connection shares. The chunks handed to
  // onData are kept as given here (not copied), so a chunk that still
  // pointed into that buffer would show the bytes of a later read. The
  // first response llhttp has to take (/chunked) keeps the connection with
  // llhttp, which then reads the socket itself: the responses after it are
  // read that way.
  const s = await rawServer((sock, _n, head) => {
    switch (head.split(' ')[1]) {
      case '/simple':
        sock.write('HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsimple');
        break;
      case '/chunked':
        sock.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n7\r\nchunked\r\n0\r\n\r\n');
        break;
      case '/split-head':
        sock.write('HTTP/1.1 200 OK\r\ncontent-');
        setTimeout(() => sock.write('length: 5\r\n\r\nsplit'), 20);
        break;
      case '/split-body':
        sock.write('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nfirst');
        setTimeout(() => sock.write('-last'), 20);
        break;
      case '/204':
        sock.write('HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\n');
        break;
    }
  });
  t.teardown(s.close);
  const pool = new H1Pool(options(s.port, { connections: 1 }));
  t.teardown(() => pool.destroy());
  const kept: Buffer[][] = [];
  const plan: [string, number, string][] = [
    ['/simple', 200, 'simple'],
    ['/split-body', 200, 'first-last'],
    ['/204', 204, ''],
    ['/simple', 200, 'simple'],
    ['/split-head', 200, 'split'],
    ['/chunked', 200, 'chunked'],
    ['/simple', 200, 'simple'],
    ['/split-body', 200, 'first-last'],
    ['/chunked', 200, 'chunked'],
  ];
  for (const [path, status, body] of plan) {
    const r = await fetchVia(pool, { path });
    kept.push(r.chunks);
    t.equal(r.status, status, `${path}: status`);
    t.equal(Buffer.concat(r.chunks).toString(), body, `${path}: body`);
  }
  t.equal(kept[1]!.length, 2, '/split-body arrived as two chunks');
  t.same(kept.map((c) => Buffer.concat(c).toString()), plan.map((p) => p[2]), 'every chunk still holds its bytes after all the later reads');
  t.equal(s.accepted(), 1, 'one connection throughout: each parser left it in step');
});

void t.test('a body paused in its first read, before llhttp reads the socket itself, resumes and completes at EOF', async (t) => {
  // llhttp takes this response (no length). The reader asks for a pause
  // while the first read is parsed in JS, i.e. before llhttp reads the socket
  // itself; the resume comes after that switch and must restart reading
  // there, or the rest of the body and the upstream's FIN never arrive.
  const s = await rawServer((sock) => {
    sock.write('HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nfirst;');
    setTimeout(() => sock.end('second;third'), 50);
  });
  t.teardown(s.close);
  const pool = new H1Pool(options(s.port));
  t.teardown(() => pool.destroy());
  const body = await new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let resume: (() => void) | undefined;
    let paused = false;
    pool.dispatch({ method: 'GET', path: '/', headers: [], body: null }, {
      onHeaders: (_s, _t, _h, x) => (resume = () => x.resume()),
      onData: (c) => {
        chunks.push(Buffer.from(c));
        if (paused) return true;
        paused = true;
        setTimeout(() => resume!(), 20);
        return false;
      },
      onComplete: () => resolve(Buffer.concat(chunks).toString()),
      onError: reject,
    });
  });
  t.equal(body, 'first;second;third');
});
