// The HTTP/1.1 proxy as a client sees it: methods and bodies pass through,
// hop-by-hop headers are dropped in both directions, X-Forwarded-* are set,
// virtual hosts and routes are selected as configured, rewrites, direct
// responses and redirects, 404 without a route, upstream keep-alive pooling
// and the load-balancing policies.
import crypto from 'node:crypto';
import http from 'node:http';
import t from 'tap';
import { httpBackend, tcpBackend } from '../helpers/backends.js';
import { startMosn } from '../helpers/mosn.js';
import { parseResponses, rawExchange } from '../helpers/raw-http.js';
import { waitFor } from '../helpers/wait.js';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

interface RequestOptions {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Sent one write at a time without content-length (chunked). */
  chunks?: (Buffer | string)[];
  agent?: http.Agent;
}

function request(port: number, o: RequestOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: o.method ?? 'GET', path: o.path ?? '/', headers: o.headers, agent: o.agent ?? false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }));
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error(`request ${o.method ?? 'GET'} ${o.path ?? '/'} timed out`)));
    req.on('error', reject);
    if (o.chunks) {
      const chunks = o.chunks;
      void (async () => {
        for (const c of chunks) {
          req.write(c);
          // separate writes become separate chunks on the wire
          await new Promise((r) => setImmediate(r));
        }
        req.end();
      })();
    } else {
      req.end(o.body);
    }
  });
}

function sha(b: Buffer): string {
  return crypto.createHash('sha256').update(b).digest('hex');
}

interface Echoed {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: string;
  length: number;
  sha: string;
}

void t.test('http proxy', { timeout: 60_000 }, async (t) => {
  // ---- backends -----------------------------------------------------------
  const echo = await httpBackend((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const url = req.url ?? '/';
      res.setHeader('x-backend', 'echo');
      if (req.method === 'HEAD') {
        res.writeHead(200, { 'content-length': '42', 'content-type': 'text/plain' });
        res.end();
        return;
      }
      if (url.startsWith('/chunked-resp')) {
        // no content-length: Node sends it chunked, in three writes
        res.writeHead(200, { 'content-type': 'text/plain' });
        const parts = ['alpha-', 'beta-', 'gamma'];
        const next = (): void => {
          const p = parts.shift();
          if (p === undefined) {
            res.end();
            return;
          }
          res.write(p);
          setImmediate(next);
        };
        next();
        return;
      }
      const reply: Echoed = {
        method: req.method ?? '',
        url,
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body: body.length <= 4096 ? body.toString('latin1') : '',
        length: body.length,
        sha: sha(body),
      };
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(reply));
    });
  });
  t.teardown(() => echo.close());

  const tagged = async (tag: string): Promise<Awaited<ReturnType<typeof httpBackend>>> => {
    const b = await httpBackend((req, res) => {
      req.resume();
      req.on('end', () => res.end(tag));
    });
    t.teardown(() => b.close());
    return b;
  };
  const beA = await tagged('A');
  const beB = await tagged('B');

  let poolConnections = 0;
  const pool = await httpBackend((req, res) => {
    req.resume();
    req.on('end', () => res.end('pooled'));
  });
  pool.server.on('connection', () => poolConnections++);
  t.teardown(() => pool.close());

  // A raw backend whose response carries every kind of hop-by-hop header.
  const rawResponse =
    'HTTP/1.1 200 OK\r\n' +
    'Connection: keep-alive, X-Secret\r\n' +
    'Keep-Alive: timeout=5, max=100\r\n' +
    'Proxy-Connection: keep-alive\r\n' +
    'Trailer: X-Checksum\r\n' +
    'Upgrade: h2c\r\n' +
    'X-Secret: hidden\r\n' +
    'X-Kept: yes\r\n' +
    'Content-Type: text/plain\r\n' +
    'Transfer-Encoding: chunked\r\n' +
    '\r\n' +
    '5\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: abc\r\n\r\n';
  const hop = await tcpBackend((s) => {
    let buf = '';
    s.setEncoding('latin1');
    s.on('error', () => undefined);
    s.on('data', (d: string) => {
      buf += d;
      let end;
      while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
        buf = buf.slice(end + 4);
        s.write(rawResponse);
      }
    });
    s.on('end', () => s.end());
  });
  t.teardown(() => hop.close());

  // ---- mosn ---------------------------------------------------------------
  const direct = (name: string, prefix: string, body: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    name,
    match: { prefix, ...extra },
    direct_response: { status: 200, body },
  });
  const m = await startMosn({
    workers: 1,
    listeners: [
      {
        name: 'web',
        address: '127.0.0.1:0',
        virtual_hosts: [
          { name: 'exact', domains: ['api.example.com'], routes: [direct('exact', '/', 'vh:exact')] },
          { name: 'short', domains: ['*.example.com'], routes: [direct('short', '/', 'vh:short')] },
          // declared after the shorter suffix: the longest suffix must still win
          { name: 'long', domains: ['*.foo.example.com'], routes: [direct('long', '/', 'vh:long')] },
          {
            name: 'any',
            domains: ['*'],
            routes: [
              direct('first-a', '/first', 'first-a'),
              direct('first-b', '/first', 'first-b'),
              { name: 'exact-path', match: { path: '/exact' }, direct_response: { status: 200, body: 'path' } },
              { name: 'regex', match: { regex: '^/re/[0-9]+$' }, direct_response: { status: 200, body: 'regex' } },
              direct('h-exact', '/hdr', 'h-exact', { headers: [{ name: 'X-Env', exact: 'canary' }] }),
              direct('h-regex', '/hdr', 'h-regex', { headers: [{ name: 'x-ver', regex: '^v[0-9]+$' }] }),
              direct('h-present', '/hdr', 'h-present', { headers: [{ name: 'x-flag' }] }),
              direct('h-invert', '/hdr', 'h-invert', { headers: [{ name: 'x-env', exact: 'prod', invert: true }] }),
              direct('h-default', '/hdr', 'h-default'),
              direct('p-open', '/presence', 'p-open', { headers: [{ name: 'x-block', present: false }] }),
              direct('p-blocked', '/presence', 'p-blocked'),
              {
                name: 'maint',
                match: { path: '/maint' },
                direct_response: { status: 503, body: '<p>down for maintenance</p>', content_type: 'text/html' },
              },
              { name: 'r-path', match: { path: '/r/path' }, redirect: { path: '/new' } },
              { name: 'r-abs', match: { path: '/r/abs' }, redirect: { scheme: 'https', host: 'example.org', status: 308, strip_query: true } },
              { name: 'r-pre', match: { prefix: '/r/pre/' }, redirect: { prefix_rewrite: '/moved/', status: 302 } },
              { name: 'r-host', match: { path: '/r/host' }, redirect: { host: 'other.example:8443', status: 307 } },
              { name: 'r-exact-rw', match: { path: '/r/old' }, redirect: { prefix_rewrite: '/r/brand-new', status: 303 } },
              { name: 'lb-rr', match: { prefix: '/lb/rr' }, route: { cluster: 'rr' } },
              { name: 'lb-lr', match: { prefix: '/lb/lr' }, route: { cluster: 'lr' } },
              { name: 'lb-random', match: { prefix: '/lb/random' }, route: { cluster: 'rand' } },
              { name: 'pool', match: { prefix: '/pool' }, route: { cluster: 'pool' } },
              { name: 'hop', match: { prefix: '/hop-response' }, route: { cluster: 'hop' } },
              { name: 'api', match: { prefix: '/api/' }, route: { cluster: 'echo', prefix_rewrite: '/v2/' } },
              { name: 'legacy', match: { path: '/legacy' }, route: { cluster: 'echo', prefix_rewrite: '/modern/endpoint' } },
              { name: 'hostrw', match: { prefix: '/hostrw' }, route: { cluster: 'echo', host_rewrite: 'backend.internal' } },
              { name: 'default', match: { prefix: '/' }, route: { cluster: 'echo' } },
            ],
          },
        ],
      },
      {
        name: 'strict',
        address: '127.0.0.1:0',
        virtual_hosts: [
          { name: 'only', domains: ['strict.test'], routes: [{ name: 'known', match: { path: '/known' }, direct_response: { status: 200, body: 'known' } }] },
        ],
      },
    ],
    clusters: [
      { name: 'echo', endpoints: [echo.address] },
      { name: 'rr', lb: 'round_robin', endpoints: [beA.address, beB.address] },
      { name: 'lr', lb: 'least_request', endpoints: [beA.address, beB.address] },
      { name: 'rand', lb: 'random', endpoints: [beA.address, beB.address] },
      { name: 'pool', endpoints: [pool.address] },
      { name: 'hop', endpoints: [hop.address] },
    ],
  });
  t.teardown(() => m.kill());
  const port = m.port('web');
  const echoed = (r: Reply): Echoed => JSON.parse(r.body.toString('utf8')) as Echoed;

  void t.test('methods pass through with their bodies', async (t) => {
    for (const method of ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      const body = method === 'GET' ? undefined : `payload for ${method}`;
      // explicit content-length: Node's client sends DELETE/OPTIONS bodies unframed otherwise
      const headers: Record<string, string> = body ? { 'content-type': 'text/plain', 'content-length': String(body.length) } : {};
      const r = await request(port, { method, path: `/m/${method}?x=1`, body, headers });
      t.equal(r.status, 200, `${method} status`);
      t.equal(r.headers['x-backend'], 'echo', `${method} reached the backend`);
      const e = echoed(r);
      t.equal(e.method, method, `${method} method`);
      t.equal(e.url, `/m/${method}?x=1`, `${method} url`);
      t.equal(e.body, body ?? '', `${method} body`);
      if (body) t.equal(e.headers['content-length'], String(body.length), `${method} content-length`);
    }
    const head = await request(port, { method: 'HEAD', path: '/m/head' });
    t.equal(head.status, 200);
    t.equal(head.headers['content-length'], '42', 'HEAD keeps the upstream content-length');
    t.equal(head.body.length, 0, 'HEAD has no body');
    await waitFor(
      () => {
        const seen = new Set(m.accessLogs().filter((l) => String(l['path']).startsWith('/m/') && l['status'] === 200).map((l) => l['method']));
        return ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'].every((x) => seen.has(x));
      },
      { timeoutMs: 5000, what: 'an access log line for every method, with or without a body' },
    );
  });

  void t.test('a keep-alive connection is idle again after a request with a body', async (t) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    t.teardown(() => agent.destroy());
    const r = await request(port, { method: 'POST', path: '/idle-after', body: 'x'.repeat(1000), headers: { 'content-length': '1000' }, agent });
    t.equal(r.status, 200);
    // the downstream connection stays open in the agent; the worker must count it idle
    await waitFor(
      async () => {
        const s = await m.refresh();
        return s.connections['idle'] === 1 && s.connections['in_request'] === 0;
      },
      { timeoutMs: 5000, what: 'the connection to be reported idle, not in_request' },
    );
    t.pass('reported idle');
  });

  void t.test('HEAD leaves no stray body bytes on a keep-alive connection', async (t) => {
    const buf = await rawExchange(
      port,
      'HEAD /head HTTP/1.1\r\nHost: h.test\r\n\r\n' + 'GET /after-head HTTP/1.1\r\nHost: h.test\r\nConnection: close\r\n\r\n',
    );
    const [first, second] = parseResponses(buf, [true, false]);
    t.equal(first?.status, 200);
    t.same(first?.headers.get('content-length'), ['42']);
    t.equal(second?.status, 200, 'the next response follows the HEAD headers immediately');
    t.equal((JSON.parse(second!.body.toString()) as Echoed).url, '/after-head');
  });

  void t.test('request bodies: content-length and chunked arrive intact', async (t) => {
    const big = crypto.randomBytes(256 * 1024);
    const r1 = await request(port, { method: 'POST', path: '/upload-cl', body: big });
    const e1 = echoed(r1);
    t.equal(e1.length, big.length);
    t.equal(e1.sha, sha(big));
    t.equal(e1.headers['content-length'], String(big.length));
    t.notOk(e1.headers['transfer-encoding'], 'no transfer-encoding next to content-length');

    const parts = [crypto.randomBytes(1000), crypto.randomBytes(70_000), Buffer.from('tail')];
    const r2 = await request(port, { method: 'PUT', path: '/upload-chunked', chunks: parts });
    const e2 = echoed(r2);
    t.equal(e2.length, 71_004);
    t.equal(e2.sha, sha(Buffer.concat(parts)));
    t.equal(e2.headers['transfer-encoding'], 'chunked', 'still chunked upstream');
    t.notOk(e2.headers['content-length']);
  });

  void t.test('Expect: 100-continue gets its interim response and the body goes through', async (t) => {
    const reply = await new Promise<{ status: number; continued: boolean; body: string }>((resolve, reject) => {
      let continued = false;
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/expect',
          agent: false,
          headers: { expect: '100-continue', 'content-length': '11' },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, continued, body: Buffer.concat(chunks).toString() }));
        },
      );
      req.setTimeout(5000, () => req.destroy(new Error('timed out')));
      req.on('error', reject);
      req.on('continue', () => {
        continued = true;
        req.end('hello world');
      });
    });
    t.equal(reply.status, 200);
    t.ok(reply.continued, 'client saw 100 Continue');
    const e = JSON.parse(reply.body) as Echoed;
    t.equal(e.body, 'hello world');
    t.notOk(e.headers['expect'], 'expect is not forwarded (the proxy answered it)');
  });

  void t.test('chunked response passes through', async (t) => {
    const r = await request(port, { path: '/chunked-resp' });
    t.equal(r.status, 200);
    t.equal(r.headers['transfer-encoding'], 'chunked');
    t.notOk(r.headers['content-length']);
    t.equal(r.body.toString(), 'alpha-beta-gamma');
  });

  void t.test('hop-by-hop request headers are not forwarded', async (t) => {
    const buf = await rawExchange(
      port,
      'POST /hop-request HTTP/1.1\r\n' +
        'Host: hop.test\r\n' +
        'Connection: keep-alive, X-Private\r\n' +
        'Keep-Alive: timeout=5\r\n' +
        'Proxy-Connection: keep-alive\r\n' +
        'TE: trailers\r\n' +
        'Trailer: X-Sum\r\n' +
        'Upgrade: foo/1\r\n' +
        'X-Private: secret\r\n' +
        'X-Normal: yes\r\n' +
        'Transfer-Encoding: chunked\r\n' +
        '\r\n' +
        '5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n' +
        'GET /bye HTTP/1.1\r\nHost: hop.test\r\nConnection: close\r\n\r\n',
    );
    const [res] = parseResponses(buf, [false, false]);
    t.equal(res?.status, 200);
    const e = JSON.parse(res!.body.toString()) as Echoed;
    t.equal(e.body, 'hello');
    const names = new Set<string>();
    for (let i = 0; i < e.rawHeaders.length; i += 2) names.add(e.rawHeaders[i]!.toLowerCase());
    for (const h of ['keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'x-private']) t.notOk(names.has(h), `${h} removed`);
    t.equal(e.headers['x-normal'], 'yes', 'end-to-end headers kept');
    t.notMatch(String(e.headers['connection'] ?? ''), /x-private/i, 'the client Connection header is not forwarded');
  });

  void t.test('hop-by-hop response headers are not forwarded', async (t) => {
    const buf = await rawExchange(port, 'GET /hop-response HTTP/1.1\r\nHost: hop.test\r\nConnection: close\r\n\r\n');
    const [res] = parseResponses(buf, [false]);
    t.equal(res?.status, 200);
    for (const h of ['keep-alive', 'proxy-connection', 'trailer', 'upgrade', 'x-secret']) t.notOk(res!.headers.has(h), `${h} removed`);
    t.same(res!.headers.get('connection'), ['close'], 'only the proxy’s own Connection header');
    t.same(res!.headers.get('x-kept'), ['yes']);
    t.same(res!.headers.get('transfer-encoding'), ['chunked'], 'one transfer-encoding, the proxy’s own');
    t.equal(res!.body.toString(), 'hello world');
  });

  void t.test('X-Forwarded-For / -Proto / -Host', async (t) => {
    const r1 = await request(port, { path: '/xff', headers: { host: 'front.example:8443', 'x-forwarded-for': '203.0.113.7, 198.51.100.2', 'x-forwarded-proto': 'https' } });
    const e1 = echoed(r1);
    t.equal(e1.headers['x-forwarded-for'], '203.0.113.7, 198.51.100.2, 127.0.0.1', 'client address appended, existing value kept');
    t.equal(e1.headers['x-forwarded-proto'], 'http', 'proto reflects the downstream connection');
    t.equal(e1.headers['x-forwarded-host'], 'front.example:8443');
    t.equal(e1.headers['host'], 'front.example:8443', 'host passes through');

    const r2 = await request(port, { path: '/xff', headers: { host: 'inner.example', 'x-forwarded-host': 'outer.example' } });
    const e2 = echoed(r2);
    t.equal(e2.headers['x-forwarded-host'], 'outer.example', 'an existing X-Forwarded-Host is kept');
    t.equal(e2.headers['x-forwarded-for'], '127.0.0.1');
  });

  void t.test('virtual host selection by Host', async (t) => {
    const cases: [string, string][] = [
      ['api.example.com', 'vh:exact'],
      ['API.Example.COM:8080', 'vh:exact'],
      ['x.foo.example.com', 'vh:long'],
      ['a.b.foo.example.com:99', 'vh:long'],
      ['bar.example.com', 'vh:short'],
      ['foo.example.com', 'vh:short'],
    ];
    for (const [host, want] of cases) {
      const r = await request(port, { path: '/', headers: { host } });
      t.equal(r.body.toString(), want, `Host ${host}`);
    }
    // example.com itself is not under *.example.com: it falls to "*"
    const r = await request(port, { path: '/first', headers: { host: 'example.com' } });
    t.equal(r.body.toString(), 'first-a');
  });

  void t.test('route matching', async (t) => {
    const cases: [string, Record<string, string>, string][] = [
      ['/first', {}, 'first-a'],
      ['/first/deeper', {}, 'first-a'],
      ['/exact', {}, 'path'],
      ['/exact?q=1', {}, 'path'],
      ['/re/123', {}, 'regex'],
      ['/hdr', { 'x-env': 'canary' }, 'h-exact'],
      ['/hdr', { 'x-ver': 'v2' }, 'h-regex'],
      ['/hdr', { 'x-ver': 'vX', 'x-env': 'prod' }, 'h-default'],
      ['/hdr', { 'x-flag': '' }, 'h-present'],
      ['/hdr', { 'x-env': 'staging' }, 'h-invert'],
      ['/hdr', {}, 'h-invert'],
      ['/hdr', { 'x-env': 'prod' }, 'h-default'],
      ['/presence', {}, 'p-open'],
      ['/presence', { 'x-block': '1' }, 'p-blocked'],
    ];
    for (const [path, headers, want] of cases) {
      const r = await request(port, { path, headers });
      t.equal(r.body.toString(), want, `${path} ${JSON.stringify(headers)}`);
    }
    // not matched by the exact path / regex routes: fall to the default route
    for (const path of ['/exact/more', '/re/abc']) {
      const r = await request(port, { path });
      t.equal(r.headers['x-backend'], 'echo', `${path} falls through to the default route`);
    }
  });

  void t.test('prefix_rewrite and host_rewrite', async (t) => {
    const e1 = echoed(await request(port, { path: '/api/users/7?full=1' }));
    t.equal(e1.url, '/v2/users/7?full=1');
    const e2 = echoed(await request(port, { path: '/legacy?a=b' }));
    t.equal(e2.url, '/modern/endpoint?a=b', 'a path match rewrites the whole path');
    const e3 = echoed(await request(port, { path: '/hostrw/x', headers: { host: 'public.example' } }));
    t.equal(e3.headers['host'], 'backend.internal');
    t.equal(e3.headers['x-forwarded-host'], 'public.example', 'X-Forwarded-Host keeps the original host');
    t.equal(e3.url, '/hostrw/x');
  });

  void t.test('direct_response', async (t) => {
    const r = await request(port, { path: '/maint' });
    t.equal(r.status, 503);
    t.equal(r.headers['content-type'], 'text/html');
    t.equal(r.headers['content-length'], String(r.body.length));
    t.equal(r.body.toString(), '<p>down for maintenance</p>');
    t.notOk(r.headers['x-mosn-error'], 'a configured response is not an error');
  });

  void t.test('redirects', async (t) => {
    const cases: [string, Record<string, string>, number, string][] = [
      ['/r/path?q=1', {}, 301, '/new?q=1'],
      ['/r/abs?q=1', {}, 308, 'https://example.org/r/abs'],
      ['/r/pre/a/b?x=1', {}, 302, '/moved/a/b?x=1'],
      ['/r/host?q=1', {}, 307, 'http://other.example:8443/r/host?q=1'],
      ['/r/old?k=v', {}, 303, '/r/brand-new?k=v'],
    ];
    for (const [path, headers, status, location] of cases) {
      const r = await request(port, { path, headers });
      t.equal(r.status, status, `${path} status`);
      t.equal(r.headers['location'], location, `${path} location`);
      t.equal(r.body.length, 0);
    }
  });

  void t.test('404 when no route matches', async (t) => {
    const strict = m.port('strict');
    const ok = await request(strict, { path: '/known', headers: { host: 'strict.test' } });
    t.equal(ok.body.toString(), 'known');
    const noRoute = await request(strict, { path: '/missing-route', headers: { host: 'strict.test' } });
    t.equal(noRoute.status, 404);
    t.equal(noRoute.headers['x-mosn-error'], 'MOSN_ERR_NO_ROUTE');
    t.equal(noRoute.body.toString(), 'no route matched\n');
    const noVhost = await request(strict, { path: '/known', headers: { host: 'elsewhere.test' } });
    t.equal(noVhost.status, 404, 'no virtual host for the Host');
    t.equal(noVhost.headers['x-mosn-error'], 'MOSN_ERR_NO_ROUTE');
    await waitFor(
      () =>
        m.accessLogs().some((l) => l['path'] === '/missing-route' && l['status'] === 404 && l['error'] === 'MOSN_ERR_NO_ROUTE' && l['listener'] === 'strict'),
      { timeoutMs: 5000, what: 'access log line for the 404' },
    );
  });

  void t.test('upstream keep-alive: sequential requests reuse one upstream connection', async (t) => {
    const before = poolConnections;
    for (let i = 0; i < 30; i++) {
      // a new downstream connection each time: pooling is upstream-side
      const r = await request(port, { path: `/pool/${i}` });
      t.equal(r.status, 200);
    }
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 20; i++) {
      const r = await request(port, { path: `/pool/ka/${i}`, agent });
      t.equal(r.body.toString(), 'pooled');
    }
    agent.destroy();
    t.ok(poolConnections - before <= 2, `50 requests used ${poolConnections - before} upstream connection(s)`);
  });

  void t.test('round_robin alternates between the endpoints', async (t) => {
    const tags: string[] = [];
    for (let i = 0; i < 10; i++) tags.push((await request(port, { path: '/lb/rr' })).body.toString());
    t.equal(tags.filter((x) => x === 'A').length, 5, tags.join(''));
    t.equal(tags.filter((x) => x === 'B').length, 5);
    for (let i = 1; i < tags.length; i++) t.not(tags[i], tags[i - 1], `request ${i} went to the other endpoint`);
  });

  for (const [policy, path] of [
    ['least_request', '/lb/lr'],
    ['random', '/lb/random'],
  ] as const) {
    void t.test(`${policy} uses both endpoints`, async (t) => {
      const counts = { A: 0, B: 0 } as Record<string, number>;
      for (let i = 0; i < 40; i++) {
        const r = await request(port, { path });
        t.equal(r.status, 200);
        const tag = r.body.toString();
        counts[tag] = (counts[tag] ?? 0) + 1;
      }
      t.equal(counts['A']! + counts['B']!, 40, JSON.stringify(counts));
      t.ok(counts['A']! > 0 && counts['B']! > 0, `both endpoints used: ${JSON.stringify(counts)}`);
    });
  }
});
