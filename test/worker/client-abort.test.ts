// A client that goes away in the middle of its request body: the upstream
// request is cut too (the backend sees it end without its body, not hang
// waiting for the rest), the access log records it, and the worker carries
// on serving.
import http from 'node:http';
import net from 'node:net';
import t from 'tap';
import { httpBackend } from '../helpers/backends.js';
import { startMosn } from '../helpers/mosn.js';
import { waitFor } from '../helpers/wait.js';

const BODY = 1024 * 1024;

void t.test('a client that closes mid-upload', async (t) => {
  const seen = { bytes: 0, ended: 0, cut: 0 };
  const be = await httpBackend((req, res) => {
    if (req.method !== 'POST') {
      res.end('ok');
      return;
    }
    req.on('data', (c: Buffer) => (seen.bytes += c.length));
    req.on('end', () => {
      seen.ended++;
      res.end('whole body');
    });
    req.on('close', () => {
      if (!req.complete) seen.cut++;
    });
  });
  t.teardown(() => be.close());
  const m = await startMosn({
    workers: 1,
    listeners: [{ name: 'web', address: '127.0.0.1:0', virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ name: 'all', match: { prefix: '/' }, route: { cluster: 'app' } }] }] }],
    clusters: [{ name: 'app', endpoints: [be.address] }],
  });
  t.teardown(() => m.kill());
  const port = m.port('web');
  const workerPid = m.status.generations[0]!.workers[0]!.pid;

  const client = net.connect(port, '127.0.0.1');
  client.on('error', () => undefined);
  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  client.write(`POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: ${BODY}\r\n\r\n`);
  client.write(Buffer.alloc(64 * 1024, 120));
  await waitFor(() => seen.bytes >= 64 * 1024, { what: 'the first 64 KiB of the body at the backend' });
  client.destroy();

  await waitFor(() => seen.cut === 1, { what: 'the backend to see its request cut' });
  t.equal(seen.ended, 0, 'the backend never saw a complete body');
  t.ok(seen.bytes < BODY, `the backend got ${seen.bytes} of ${BODY} bytes`);
  await waitFor(() => m.lines.some((l) => l.includes('"log":"access"') && l.includes('"path":"/upload"')), { what: 'the access log line of the cut upload' });
  const line = JSON.parse(m.lines.find((l) => l.includes('"log":"access"') && l.includes('"path":"/upload"'))!) as { error?: string; method?: string };
  t.equal(line.method, 'POST');
  t.match(line.error ?? '', /^MOSN_/, `the access log names the failure (${line.error})`);

  // The same worker still serves.
  const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/after', agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
  t.equal(r.status, 200);
  t.equal(r.body, 'ok');
  t.equal((await m.refresh()).generations[0]!.workers[0]!.pid, workerPid, 'same worker process');
});
