// How many writes a proxied response costs the client connection. Each
// write is a syscall (and, on loopback, the delivery to the reader): a small
// response must leave in one write with its head, body and end, and no write
// may be empty. The HTTP engine runs in this process (a real listener socket,
// the real upstream pool, a real backend), so the client socket's handle can
// be watched: every write the engine hands to libuv is counted, with its size.
import http from 'node:http';
import net from 'node:net';
import t from 'tap';
import { parseConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/common/log.js';
import { AccessLog } from '../../src/worker/access-log.js';
import { HttpListener } from '../../src/worker/http/listener.js';
import { WorkerMetrics } from '../../src/worker/metrics.js';
import { ConnectionRegistry } from '../../src/worker/registry.js';
import { ClusterManager } from '../../src/worker/upstream/cluster.js';
import { parseResponses } from '../helpers/raw-http.js';
import { waitFor } from '../helpers/wait.js';

/** Byte counts of the writes handed to a socket's handle, in order. */
function watchWrites(socket: net.Socket): number[] {
  const sizes: number[] = [];
  const h = (socket as unknown as { _handle: Record<string, (...a: unknown[]) => unknown> })._handle;
  for (const name of ['writeBuffer', 'writeLatin1String', 'writeUtf8String', 'writeAsciiString', 'writev'] as const) {
    const orig = h[name];
    if (typeof orig !== 'function') continue;
    h[name] = function (this: unknown, ...args: unknown[]) {
      const data = args[1];
      if (name === 'writev') {
        const chunks = data as (Buffer | string)[];
        // writev(req, chunks, allBuffers): with allBuffers the list is buffers, else [chunk, encoding, ...].
        const all = args[2] === true;
        let n = 0;
        for (let i = 0; i < chunks.length; i += all ? 1 : 2) n += Buffer.byteLength(chunks[i] as string);
        sizes.push(n);
      } else sizes.push(Buffer.byteLength(data as string, name === 'writeLatin1String' ? 'latin1' : undefined));
      return orig.apply(this, args);
    };
  }
  return sizes;
}

void t.test('writes per proxied response on the client connection', async (t) => {
  const backend = http.createServer((req, res) => {
    if (req.url === '/small') res.end('hello world');
    else if (req.url === '/chunked') {
      res.write('first');
      setTimeout(() => res.end('last'), 20);
    } else if (req.url === '/split') {
      // The body in two upstream reads (two writes, a pause between them).
      res.writeHead(200, { 'content-length': '10' });
      res.write('12345');
      setTimeout(() => res.end('67890'), 20);
    } else if (req.url === '/stream') {
      // The head now, the body when the test says so.
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.flushHeaders();
      streams.push(res);
    } else res.end();
  });
  const streams: http.ServerResponse[] = [];
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  t.teardown(() => backend.close());
  const port = (backend.address() as net.AddressInfo).port;

  const cfg = parseConfig(
    [
      'listeners:',
      '  - name: web',
      '    address: 127.0.0.1:0',
      '    virtual_hosts:',
      '      - name: all',
      '        domains: ["*"]',
      '        routes: [{ match: { prefix: "/" }, route: { cluster: app } }]',
      'clusters:',
      `  - { name: app, endpoints: ["127.0.0.1:${port}"] }`,
      'log: { level: error, access_log: "off" }',
    ].join('\n'),
    'write-coalescing.yaml',
  );
  const ctx = {
    log: createLogger('worker', {}, 'error'),
    access: new AccessLog('off', {}),
    metrics: new WorkerMetrics(),
    registry: new ConnectionRegistry(),
    clusters: new ClusterManager(cfg.clusters),
    draining: false,
  };
  const listener = new HttpListener(cfg.listeners[0]!, ctx);
  let writes: number[] = [];
  const server = net.createServer({ pauseOnConnect: true, noDelay: true }, (s) => {
    writes = watchWrites(s);
    listener.accept(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    server.close();
    ctx.clusters.destroy();
  });
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  t.teardown(() => client.destroy());
  let got = Buffer.alloc(0);
  client.on('data', (d: Buffer) => (got = Buffer.concat([got, d])));

  /** Sends GET `path` on the kept-alive connection; returns the response and the writes it took. */
  const get = async (path: string): Promise<{ body: string; writes: number[] }> => {
    got = Buffer.alloc(0);
    const before = writes.length;
    client.write(`GET ${path} HTTP/1.1\r\nhost: x\r\n\r\n`);
    let res: ReturnType<typeof parseResponses> = [];
    await waitFor(
      () => {
        try {
          res = parseResponses(got, [false]);
          return res.length === 1;
        } catch {
          return false; // not complete yet (parseResponses throws on a partial head or body)
        }
      },
      { timeoutMs: 5000, what: `the response to ${path}` },
    );
    return { body: res[0]!.body.toString(), writes: writes.slice(before) };
  };

  for (let i = 0; i < 3; i++) {
    const r = await get('/small');
    t.equal(r.body, 'hello world', 'small response body');
    t.equal(r.writes.length, 1, `small response ${i + 1}: one write (head, body and end together), got ${JSON.stringify(r.writes)}`);
  }
  const chunked = await get('/chunked');
  t.equal(chunked.body, 'firstlast', 'chunked body arrives whole');
  t.ok(chunked.writes.length >= 2, 'a body that arrives in parts is passed on as it arrives');
  t.notOk(chunked.writes.includes(0), `no empty write in a chunked response: ${JSON.stringify(chunked.writes)}`);
  const split = await get('/split');
  t.equal(split.body, '1234567890', 'a content-length body in two reads arrives whole');
  t.same(split.writes.length, 2, `one write per upstream read: ${JSON.stringify(split.writes)}`);
  t.notOk(split.writes.includes(0), 'no empty write');
  const after = await get('/small');
  t.equal(after.writes.length, 1, 'the connection still answers in one write');

  // A response whose body comes later (server-sent events, long polls): its head reaches the client first.
  got = Buffer.alloc(0);
  client.write('GET /stream HTTP/1.1\r\nhost: x\r\n\r\n');
  await waitFor(() => got.includes('\r\n\r\n'), { timeoutMs: 5000, what: 'the head of a response whose body has not started' });
  t.match(got.toString('latin1'), /^HTTP\/1\.1 200 OK\r\n[^]*content-type: text\/event-stream\r\n[^]*transfer-encoding: chunked\r\n/, 'status and headers, framed as chunked');
  t.equal(streams.length, 1, 'the backend still holds the body');
  streams[0]!.end('data: one\n\n');
  await waitFor(() => got.includes('data: one') && got.toString('latin1').endsWith('\r\n0\r\n\r\n'), { timeoutMs: 5000, what: 'the end of the streamed body' });
  t.match(got.toString('latin1'), /\r\n\r\n[0-9a-f]+\r\ndata: one\n\n\r\n0\r\n\r\n$/, 'then the body');
});
