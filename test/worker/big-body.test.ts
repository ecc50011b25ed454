// 100 MB through the HTTP proxy in each direction, streamed: the bytes
// arrive intact (count and hash at both ends), a stalled receiver holds the
// sender back through the proxy (backpressure end to end, so the proxy never
// buffers a body whole), and the worker's resident memory stays bounded.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import t from 'tap';
import { httpBackend } from '../helpers/backends.js';
import { startMosn } from '../helpers/mosn.js';
import { waitFor } from '../helpers/wait.js';

const MiB = 1024 * 1024;
const TOTAL = 100 * MiB;
const CHUNK = 64 * 1024;
// While the receiver reads nothing, the sender may get this far ahead: socket
// buffers on both hops plus the proxy's stream buffers, not the body.
const HELD_BACK_LIMIT = 40 * MiB;
// Worker RSS bound. A worker starts at ~65 MB and streaming 100 MB peaks at
// 100-155 MB: V8 lets ~64 MB of dead socket read buffers (external memory)
// pile up before it collects them, so the peak measures the GC as much as
// the proxy. The held-back check above is the precise one; this is the
// backstop against holding bodies in memory.
const RSS_LIMIT = 180 * MiB;

// Each chunk is a shared random block stamped with its index at both ends, so
// loss, duplication and reordering all change the hash.
const block = crypto.randomBytes(CHUNK);
function chunk(i: number): Buffer {
  const b = Buffer.allocUnsafe(CHUNK);
  block.copy(b);
  b.writeUInt32BE(i, 0);
  b.writeUInt32BE((i ^ 0x9e3779b9) >>> 0, CHUNK - 4);
  return b;
}

/** Writes TOTAL bytes of chunks to `w`, honouring backpressure; resolves with their sha256. */
async function produce(w: NodeJS.WritableStream, progress: { bytes: number }): Promise<string> {
  const h = crypto.createHash('sha256');
  for (let i = 0; i < TOTAL / CHUNK; i++) {
    const c = chunk(i);
    h.update(c);
    const more = w.write(c);
    progress.bytes += c.length;
    if (!more) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = (): void => {
          w.removeListener('error', onError);
          resolve();
        };
        const onError = (e: Error): void => {
          w.removeListener('drain', onDrain);
          reject(e);
        };
        w.once('drain', onDrain);
        w.once('error', onError);
      });
    }
  }
  w.end();
  return h.digest('hex');
}

/** Reads `r` to its end: byte count and sha256. */
function consume(r: NodeJS.ReadableStream): Promise<{ bytes: number; sha: string }> {
  return new Promise((resolve, reject) => {
    const h = crypto.createHash('sha256');
    let bytes = 0;
    r.on('data', (c: Buffer) => {
      bytes += c.length;
      h.update(c);
    });
    r.on('error', reject);
    r.on('end', () => resolve({ bytes, sha: h.digest('hex') }));
  });
}

/** Resolves with how far the producer got once it has made no progress for a while: it is held back. */
async function heldBack(progress: { bytes: number }): Promise<number> {
  let last = -1;
  let since = Date.now();
  await waitFor(
    () => {
      if (progress.bytes !== last) {
        last = progress.bytes;
        since = Date.now();
      }
      return last > 0 && Date.now() - since >= 300;
    },
    { timeoutMs: 10_000, intervalMs: 20, what: 'the sender to be held back by the stalled receiver' },
  );
  return last;
}

function mb(bytes: number): string {
  return (bytes / 1048576).toFixed(1);
}

function vmRss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Samples the peak VmRSS of `pids` until stopped. */
function rssSampler(pids: number[]): { stop(): number; samples(): number } {
  let peak = 0;
  let n = 0;
  const sample = (): void => {
    for (const p of pids) peak = Math.max(peak, vmRss(p));
    n++;
  };
  sample();
  const timer = setInterval(sample, 20);
  return {
    stop: () => {
      clearInterval(timer);
      sample();
      return peak;
    },
    samples: () => n,
  };
}

void t.test('100 MB bodies stream through with backpressure and bounded worker memory', { timeout: 60_000 }, async (t) => {
  const uploadProgress = { bytes: 0 };
  const downloadProgress = { bytes: 0 };
  let served: Promise<string> | undefined;
  let startReading: (() => void) | undefined;
  const be = await httpBackend((req, res) => {
    if (req.url === '/upload') {
      // reads nothing until the test says so
      startReading = () =>
        void consume(req).then((r) => {
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify(r));
        });
      return;
    }
    // /download: no content-length, so it is chunked end to end
    req.resume();
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    served = produce(res, downloadProgress);
  });
  t.teardown(() => be.close());
  const m = await startMosn({
    workers: 1,
    listeners: [
      {
        name: 'web',
        address: '127.0.0.1:0',
        virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'be', timeout: '60s' } }] }],
      },
    ],
    clusters: [{ name: 'be', endpoints: [be.address] }],
  });
  t.teardown(() => m.kill());
  const port = m.port('web');
  const pids = m.workerPids();
  t.equal(pids.length, 1, 'one worker');
  const baseline = vmRss(pids[0]!);
  t.ok(baseline > 0, `VmRSS readable (${mb(baseline)} MB before any transfer)`);

  void t.test('upload (content-length)', async (t) => {
    const rss = rssSampler(pids);
    let sent: Promise<string> | undefined;
    const response = new Promise<{ bytes: number; sha: string }>((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port, method: 'PUT', path: '/upload', agent: false, headers: { 'content-length': String(TOTAL) } },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => {
            if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}: ${body}`));
            else resolve(JSON.parse(body) as { bytes: number; sha: string });
          });
        },
      );
      req.on('error', reject);
      sent = produce(req, uploadProgress);
      sent.catch(reject);
    });
    const ahead = await heldBack(uploadProgress);
    t.ok(ahead < HELD_BACK_LIMIT, `with the backend not reading, the client could send only ${mb(ahead)} MB`);
    t.ok(startReading, 'the request reached the backend');
    startReading!();
    const got = await response;
    const peak = rss.stop();
    t.equal(got.bytes, TOTAL, 'every byte reached the backend');
    t.equal(got.sha, await sent!, 'in order, unaltered');
    t.ok(rss.samples() > 5, `sampled during the transfer (${rss.samples()} samples)`);
    t.ok(peak < RSS_LIMIT, `worker peak RSS ${mb(peak)} MB < ${mb(RSS_LIMIT)} MB`);
  });

  void t.test('download (chunked)', async (t) => {
    const rss = rssSampler(pids);
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/download', agent: false }, resolve);
      req.on('error', reject);
    });
    t.equal(res.statusCode, 200);
    t.equal(res.headers['transfer-encoding'], 'chunked');
    // the response stays paused until something reads it
    const ahead = await heldBack(downloadProgress);
    t.ok(ahead < HELD_BACK_LIMIT, `with the client not reading, the backend could send only ${mb(ahead)} MB`);
    const got = await consume(res);
    const peak = rss.stop();
    t.ok(served, 'the backend served it');
    t.equal(got.bytes, TOTAL, 'every byte reached the client');
    t.equal(got.sha, await served!, 'in order, unaltered');
    t.ok(rss.samples() > 5, `sampled during the transfer (${rss.samples()} samples)`);
    t.ok(peak < RSS_LIMIT, `worker peak RSS ${mb(peak)} MB < ${mb(RSS_LIMIT)} MB`);
  });
});
