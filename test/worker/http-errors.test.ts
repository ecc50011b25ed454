// Upstream failures as the client sees them: a proxy-generated 502/504 with
// the stable code in `x-mosn-error` when no response had started, a cut
// connection when one had, and the same code in the access log `error` field.
import http from 'node:http';
import net from 'node:net';
import t from 'tap';
import { deadPort, httpBackend, tcpBackend } from '../helpers/backends.js';
import { startMosn } from '../helpers/mosn.js';
import { waitFor } from '../helpers/wait.js';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  ms: number;
}

function get(port: number, path: string): Promise<Reply> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, ms: Date.now() - started }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
  });
}

/** Reads one request head from a raw backend socket, then calls `then`. */
function onRequestHead(s: net.Socket, then: (s: net.Socket) => void): void {
  let buf = '';
  s.setEncoding('latin1');
  s.on('error', () => undefined);
  const onData = (d: string): void => {
    buf += d;
    if (buf.includes('\r\n\r\n')) {
      s.removeListener('data', onData);
      then(s);
    }
  };
  s.on('data', onData);
}

void t.test('upstream errors', { timeout: 60_000 }, async (t) => {
  const dead = await deadPort();

  // Accepts requests and never answers; counts requests and their ends.
  const hangSeen = { requests: 0, closed: 0 };
  const hang = await httpBackend((req) => {
    hangSeen.requests++;
    req.socket.once('close', () => hangSeen.closed++);
  });
  t.teardown(() => hang.close());

  // Streams until the connection goes away.
  const endless = { started: 0, closed: 0 };
  const stream = await httpBackend((req, res) => {
    endless.started++;
    res.once('close', () => endless.closed++);
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    const block = Buffer.alloc(64 * 1024, 120);
    const pump = (): void => {
      while (!res.destroyed && res.write(block));
      if (!res.destroyed) res.once('drain', pump);
    };
    pump();
  });
  t.teardown(() => stream.close());

  // Resets the connection after reading the request, before any response byte.
  const reset = await tcpBackend((s) => onRequestHead(s, (sock) => sock.resetAndDestroy()));
  t.teardown(() => reset.close());

  // Sends half a status line and closes.
  const halfHead = await tcpBackend((s) =>
    onRequestHead(s, (sock) => {
      sock.end('HTTP/1.1 200 OK\r\nContent-Type: text/pl');
    }),
  );
  t.teardown(() => halfHead.close());

  // Not HTTP at all.
  const garbage = await tcpBackend((s) => onRequestHead(s, (sock) => sock.end('SSH-2.0-OpenSSH_9.6\r\n\r\n')));
  t.teardown(() => garbage.close());

  // Starts a response, then dies when the test says so (once the client has
  // seen the headers), so the truncation is certain to come after them.
  const cut: { sockets: net.Socket[] } = { sockets: [] };
  const truncated = await tcpBackend((s) =>
    onRequestHead(s, (sock) => {
      cut.sockets.push(sock);
      sock.write('HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n' + 'x'.repeat(1000));
    }),
  );
  t.teardown(() => truncated.close());
  const truncatedChunked = await tcpBackend((s) =>
    onRequestHead(s, (sock) => {
      cut.sockets.push(sock);
      sock.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n' + '3e8\r\n' + 'y'.repeat(1000) + '\r\n');
    }),
  );
  t.teardown(() => truncatedChunked.close());

  // Records every request; /q/hold is never answered, the rest at once.
  const received: string[] = [];
  const queue = await httpBackend((req, res) => {
    received.push(req.url ?? '');
    if (req.url !== '/q/hold') res.end('ok');
  });
  t.teardown(() => queue.close());

  const m = await startMosn({
    workers: 1,
    listeners: [
      {
        name: 'web',
        address: '127.0.0.1:0',
        virtual_hosts: [
          {
            name: 'vh',
            domains: ['*'],
            routes: [
              { match: { prefix: '/refused' }, route: { cluster: 'dead' } },
              { match: { prefix: '/route-timeout' }, route: { cluster: 'hang', timeout: '300ms' } },
              { match: { prefix: '/headers-timeout' }, route: { cluster: 'hang-headers' } },
              { match: { prefix: '/reset' }, route: { cluster: 'reset' } },
              { match: { prefix: '/half-head' }, route: { cluster: 'half-head' } },
              { match: { prefix: '/garbage' }, route: { cluster: 'garbage' } },
              { match: { prefix: '/truncated-cl' }, route: { cluster: 'truncated' } },
              { match: { prefix: '/truncated-chunked' }, route: { cluster: 'truncated-chunked' } },
              { match: { prefix: '/endless' }, route: { cluster: 'endless' } },
              { match: { prefix: '/hang' }, route: { cluster: 'hang' } },
              { match: { path: '/q/hold' }, route: { cluster: 'queue', timeout: '1s' } },
              { match: { path: '/q/queued' }, route: { cluster: 'queue', timeout: '200ms' } },
              { match: { path: '/q/after' }, route: { cluster: 'queue', timeout: '5s' } },
            ],
          },
        ],
      },
    ],
    clusters: [
      { name: 'dead', endpoints: [`127.0.0.1:${dead}`] },
      { name: 'hang', endpoints: [hang.address] },
      { name: 'hang-headers', endpoints: [hang.address], headers_timeout: '300ms' },
      { name: 'reset', endpoints: [reset.address] },
      { name: 'half-head', endpoints: [halfHead.address] },
      { name: 'garbage', endpoints: [garbage.address] },
      { name: 'truncated', endpoints: [truncated.address] },
      { name: 'truncated-chunked', endpoints: [truncatedChunked.address] },
      { name: 'queue', endpoints: [queue.address], max_connections_per_endpoint: 1 },
      { name: 'endless', endpoints: [stream.address] },
    ],
  });
  t.teardown(() => m.kill());
  const port = m.port('web');

  const cases: { path: string; status: number; code: string; minMs?: number }[] = [
    { path: '/refused', status: 502, code: 'MOSN_ERR_UPSTREAM_CONNECT' },
    { path: '/route-timeout', status: 504, code: 'MOSN_ERR_UPSTREAM_REQUEST_TIMEOUT', minMs: 250 },
    { path: '/headers-timeout', status: 504, code: 'MOSN_ERR_UPSTREAM_HEADERS_TIMEOUT', minMs: 250 },
    { path: '/reset', status: 502, code: 'MOSN_ERR_UPSTREAM_RESET' },
    { path: '/half-head', status: 502, code: 'MOSN_ERR_UPSTREAM_RESET' },
    { path: '/garbage', status: 502, code: 'MOSN_ERR_UPSTREAM_PROTOCOL' },
  ];
  for (const c of cases) {
    void t.test(`${c.path}: ${c.status} ${c.code}`, async (t) => {
      const r = await get(port, c.path);
      t.equal(r.status, c.status);
      t.equal(r.headers['x-mosn-error'], c.code);
      t.equal(r.body, `upstream error: ${c.code}\n`);
      t.ok(r.ms < 5000, `answered promptly (${r.ms} ms)`);
      if (c.minMs !== undefined) t.ok(r.ms >= c.minMs, `not before the timeout (${r.ms} ms)`);
      const line = await m.accessLine(c.path);
      t.equal(line['status'], c.status, 'access log status');
      t.equal(line['error'], c.code, 'access log error');
      t.equal(line['kind'], 'http');
    });
  }

  for (const path of ['/truncated-cl', '/truncated-chunked']) {
    void t.test(`${path}: a response cut after its headers is seen as aborted`, async (t) => {
      const before = cut.sockets.length;
      const seen = await new Promise<{ status: number; bytes: number; complete: boolean; ended: boolean; error: string | undefined }>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
          let bytes = 0;
          let ended = false;
          let error: string | undefined;
          res.on('data', (c: Buffer) => {
            bytes += c.length;
            // The client has the headers and some body: now the upstream dies.
            if (cut.sockets.length > before) for (const s of cut.sockets.splice(before)) s.destroy();
          });
          res.on('end', () => (ended = true));
          res.on('error', (e) => (error = e.message));
          res.on('close', () => resolve({ status: res.statusCode ?? 0, bytes, complete: res.complete, ended, error }));
        });
        req.setTimeout(10_000, () => req.destroy(new Error('timed out')));
        req.on('error', reject);
      });
      t.equal(seen.status, 200, 'the upstream status had been passed on');
      t.ok(seen.bytes >= 1000 && seen.bytes < 100_000, `got part of the body (${seen.bytes} bytes)`);
      t.notOk(seen.complete, 'the response is incomplete');
      t.notOk(seen.ended, 'no clean end of the body');
      t.ok(seen.error, `the client saw an error (${seen.error})`);
      const line = await m.accessLine(path);
      t.equal(line['status'], 200);
      t.equal(line['error'], 'MOSN_ERR_UPSTREAM_RESET', 'access log error');
    });
  }

  void t.test('a request that timed out while queued for a connection never reaches the upstream', async (t) => {
    // One pooled connection, held by a request the backend never answers.
    const hold = get(port, '/q/hold');
    await waitFor(() => received.includes('/q/hold'), { timeoutMs: 5000, what: 'the holding request at the backend' });
    const queued = await get(port, '/q/queued');
    t.equal(queued.status, 504, 'the queued request timed out');
    t.equal(queued.headers['x-mosn-error'], 'MOSN_ERR_UPSTREAM_REQUEST_TIMEOUT');
    const held = await hold;
    t.equal(held.status, 504, 'the holding request timed out too, freeing the connection');
    // Requests leave the queue in order: had the timed-out one still been
    // queued, it would reach the backend before this one.
    const after = await get(port, '/q/after');
    t.equal(after.status, 200);
    t.same(received, ['/q/hold', '/q/after'], 'the client got a 504 for /q/queued, so the upstream must never see it');
  });

  void t.test('a client that leaves mid-response: the upstream exchange is cut too', async (t) => {
    await new Promise<void>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/endless', agent: false }, (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          bytes += c.length;
          if (bytes > 1024 * 1024) {
            req.destroy();
            resolve();
          }
        });
      });
      req.on('error', () => undefined);
      req.setTimeout(10_000, () => reject(new Error('timed out')));
    });
    await waitFor(() => endless.closed === endless.started && endless.started === 1, { timeoutMs: 5000, what: 'the upstream response to be closed' });
    const line = await m.accessLine('/endless');
    t.equal(line['status'], 200);
    t.equal(line['error'], 'MOSN_ERR_DOWNSTREAM_RESET');
  });

  void t.test('a client that leaves while waiting for headers: the upstream request is cut too', async (t) => {
    const before = { ...hangSeen };
    const req = http.get({ host: '127.0.0.1', port, path: '/hang/leave', agent: false });
    req.on('error', () => undefined);
    await waitFor(() => hangSeen.requests > before.requests, { timeoutMs: 5000, what: 'the request to reach the backend' });
    req.destroy();
    await waitFor(() => hangSeen.closed > before.closed, { timeoutMs: 5000, what: 'the upstream connection to be closed' });
    const line = await m.accessLine('/hang/leave');
    t.equal(line['status'], 499);
    t.equal(line['error'], 'MOSN_ERR_DOWNSTREAM_RESET');
  });

  void t.test('no failed exchange is left counted as in flight', async (t) => {
    await waitFor(
      async () => {
        const s = await m.refresh();
        return s.connections['active'] === 0;
      },
      { timeoutMs: 5000, what: 'every downstream connection to be gone from the worker registry' },
    );
    t.same(m.status.connections, { active: 0, idle: 0, in_request: 0, tunnel: 0 });
  });
});
