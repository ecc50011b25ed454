// The L4 TCP proxy: bytes intact both ways, half-close honoured in both
// orders, an unreachable upstream closes the client promptly, idle sessions
// are closed, and each session leaves an access log line.
import crypto from 'node:crypto';
import net from 'node:net';
import t from 'tap';
import { deadPort, tcpBackend, tcpEcho } from '../helpers/backends.js';
import { startMosn } from '../helpers/mosn.js';
import { waitFor } from '../helpers/wait.js';

const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;
const block = crypto.randomBytes(CHUNK);

/** Chunk `i` of a stream tagged `seed`: loss, duplication and reordering all change the hash. */
function chunk(seed: number, i: number): Buffer {
  const b = Buffer.allocUnsafe(CHUNK);
  block.copy(b);
  b.writeUInt32BE(seed, 0);
  b.writeUInt32BE(i, 4);
  return b;
}

/** Writes `bytes` (a multiple of CHUNK) to `s` with backpressure; resolves with the sha256; `end` afterwards if asked. */
async function send(s: net.Socket, seed: number, bytes: number, end: boolean): Promise<string> {
  const h = crypto.createHash('sha256');
  for (let i = 0; i < bytes / CHUNK; i++) {
    const c = chunk(seed, i);
    h.update(c);
    if (!s.write(c)) await new Promise((r) => s.once('drain', r));
  }
  if (end) s.end();
  return h.digest('hex');
}

function expectedSha(seed: number, bytes: number): string {
  const h = crypto.createHash('sha256');
  for (let i = 0; i < bytes / CHUNK; i++) h.update(chunk(seed, i));
  return h.digest('hex');
}

/** Collects what `s` receives until its peer's FIN. */
function receiveAll(s: net.Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    s.on('data', (c: Buffer) => parts.push(c));
    s.once('end', () => resolve(Buffer.concat(parts)));
    s.once('error', reject);
  });
}

/** allowHalfOpen: our FIN and the peer's are independent (the default answers a FIN with a FIN). */
function connect(port: number, allowHalfOpen = true): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen });
    s.once('connect', () => {
      s.removeListener('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

function closed(s: net.Socket): Promise<{ hadError: boolean; at: number }> {
  return new Promise((resolve) => s.once('close', (hadError: boolean) => resolve({ hadError, at: Date.now() })));
}

function sha(b: Buffer): string {
  return crypto.createHash('sha256').update(b).digest('hex');
}

/** Does a connect to the classic blackhole address hang here (rather than fail or succeed at once)? */
function blackholeTimesOut(): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '10.255.255.1', port: 81 });
    const timer = setTimeout(() => {
      s.destroy();
      resolve(true);
    }, 1000);
    const settle = (): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(false);
    };
    s.once('connect', settle);
    s.once('error', settle);
  });
}

void t.test('tcp proxy', { timeout: 60_000 }, async (t) => {
  const echo = await tcpBackend(tcpEcho);
  t.teardown(() => echo.close());

  // Reads until the client's FIN, then answers "<bytes> <sha>\n" plus 1 MiB, then FIN.
  const sink = await tcpBackend((s) => {
    s.on('error', () => undefined);
    const h = crypto.createHash('sha256');
    let bytes = 0;
    s.on('data', (c: Buffer) => {
      bytes += c.length;
      h.update(c);
    });
    s.on('end', () => {
      s.write(`${bytes} ${h.digest('hex')}\n`);
      void send(s, 7, MiB, true);
    });
  });
  t.teardown(() => sink.close());

  // Sends 4 MiB and FIN at once, then keeps reading until the client's FIN.
  const sourceResults: { bytes: number; sha: string }[] = [];
  const source = await tcpBackend((s) => {
    s.on('error', () => undefined);
    const h = crypto.createHash('sha256');
    let bytes = 0;
    s.on('data', (c: Buffer) => {
      bytes += c.length;
      h.update(c);
    });
    s.on('end', () => {
      sourceResults.push({ bytes, sha: h.digest('hex') });
      s.end();
    });
    void send(s, 9, 4 * MiB, true);
  });
  t.teardown(() => source.close());

  const dead = await deadPort();
  const blackhole = await blackholeTimesOut();

  const tcp = (name: string, cluster: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    name,
    address: '127.0.0.1:0',
    protocol: 'tcp',
    cluster,
    ...extra,
  });
  const m = await startMosn({
    workers: 1,
    listeners: [
      tcp('echo', 'echo'),
      tcp('sink', 'sink'),
      tcp('source', 'source'),
      tcp('refused', 'dead'),
      tcp('idle', 'echo', { timeouts: { idle: '300ms' } }),
      ...(blackhole ? [tcp('blackhole', 'blackhole')] : []),
    ],
    clusters: [
      { name: 'echo', endpoints: [echo.address] },
      { name: 'sink', endpoints: [sink.address] },
      { name: 'source', endpoints: [source.address] },
      { name: 'dead', endpoints: [`127.0.0.1:${dead}`] },
      ...(blackhole ? [{ name: 'blackhole', endpoints: ['10.255.255.1:81'], connect_timeout: '300ms' }] : []),
    ],
  });
  t.teardown(() => m.kill());

  void t.test('bytes pass intact both ways at once (echo, 8 MiB)', async (t) => {
    const s = await connect(m.port('echo'));
    const got = receiveAll(s);
    const sent = await send(s, 1, 8 * MiB, true);
    const back = await got;
    t.equal(back.length, 8 * MiB);
    t.equal(sha(back), sent, 'echoed bytes identical');
    await closed(s);
    const line = await m.accessLine((l) => l['listener'] === 'echo' && l['kind'] === 'tcp', 'access log for the echo session');
    t.equal(line['bytes_in'], 8 * MiB);
    t.equal(line['bytes_out'], 8 * MiB);
    t.equal(line['error'], undefined, 'a clean session has no error');
    t.equal(line['upstream'], echo.address);
  });

  void t.test('client half-closes first and still receives the rest', async (t) => {
    const s = await connect(m.port('sink'));
    const got = receiveAll(s);
    const sent = await send(s, 3, 4 * MiB, true);
    const back = await got;
    const nl = back.indexOf('\n');
    t.equal(back.subarray(0, nl).toString(), `${4 * MiB} ${sent}`, 'the server got every byte before the FIN');
    const tail = back.subarray(nl + 1);
    t.equal(tail.length, MiB, 'the server’s answer after the FIN arrived whole');
    t.equal(sha(tail), expectedSha(7, MiB));
    await closed(s);
  });

  void t.test('server half-closes first and the client can still send', async (t) => {
    const s = await connect(m.port('source'));
    const got = await receiveAll(s);
    t.equal(got.length, 4 * MiB);
    t.equal(sha(got), expectedSha(9, 4 * MiB));
    t.ok(s.writable, 'the client’s sending side is still open after the server’s FIN');
    const before = sourceResults.length;
    const c = closed(s);
    const sent = await send(s, 5, 2 * MiB, true);
    await waitFor(() => sourceResults.length > before, { timeoutMs: 5000, what: 'the server to see the client FIN' });
    t.same(sourceResults[before], { bytes: 2 * MiB, sha: sent }, 'bytes sent after the server’s FIN arrived');
    await c;
  });

  void t.test('upstream refused: the client connection is closed promptly', async (t) => {
    const start = Date.now();
    const s = net.connect({ port: m.port('refused'), host: '127.0.0.1' });
    s.on('error', () => undefined);
    let bytes = 0;
    s.on('data', (c: Buffer) => (bytes += c.length));
    const c = await closed(s);
    t.ok(c.at - start < 2000, `closed after ${c.at - start} ms`);
    t.equal(bytes, 0, 'nothing received');
    const line = await m.accessLine((l) => l['listener'] === 'refused', 'access log for the refused session');
    t.equal(line['error'], 'MOSN_ERR_UPSTREAM_CONNECT');
    t.equal(line['kind'], 'tcp');
  });

  void t.test('a client reset closes the upstream connection', async (t) => {
    const s = await connect(m.port('echo'));
    s.write('hello');
    await new Promise((r) => s.once('data', r));
    t.equal(echo.sockets.size, 1, 'one upstream connection');
    s.resetAndDestroy();
    await waitFor(() => echo.sockets.size === 0, { timeoutMs: 2000, what: 'the upstream connection to close' });
    const line = await m.accessLine((l) => l['listener'] === 'echo' && l['error'] === 'MOSN_ERR_DOWNSTREAM_RESET', 'access log for the reset session');
    t.equal(line['bytes_in'], 5);
  });

  void t.test('connect timeout', { skip: blackhole ? false : 'connecting to 10.255.255.1:81 does not hang in this environment (it succeeds or fails at once)' }, async (t) => {
    const start = Date.now();
    const s = net.connect({ port: m.port('blackhole'), host: '127.0.0.1' });
    s.on('error', () => undefined);
    const c = await closed(s);
    t.ok(c.at - start >= 250 && c.at - start < 3000, `closed after ${c.at - start} ms (connect_timeout 300ms)`);
    const line = await m.accessLine((l) => l['listener'] === 'blackhole', 'access log for the timed-out session');
    t.equal(line['error'], 'MOSN_ERR_UPSTREAM_CONNECT_TIMEOUT');
  });

  void t.test('idle timeout closes a silent session', async (t) => {
    const s = await connect(m.port('idle'), false);
    s.on('error', () => undefined);
    const c = closed(s);
    s.write('ping');
    await new Promise((r) => s.once('data', r));
    const lastActivity = Date.now();
    const { at } = await c;
    t.ok(at - lastActivity >= 250, `not before the idle timeout (${at - lastActivity} ms)`);
    t.ok(at - lastActivity < 3000, `closed after ${at - lastActivity} ms of silence (idle 300ms)`);
    const line = await m.accessLine((l) => l['listener'] === 'idle', 'access log for the idle session');
    t.equal(line['error'], 'MOSN_ERR_UPSTREAM_IDLE_TIMEOUT');
  });

  void t.test('traffic keeps a session past the idle timeout', async (t) => {
    const s = await connect(m.port('idle'), false);
    s.on('error', () => undefined);
    let isClosed = false;
    const c = closed(s).then((r) => {
      isClosed = true;
      return r;
    });
    const start = Date.now();
    // 10 round trips 100 ms apart: 1 s in all, over three idle timeouts
    for (let i = 0; i < 10; i++) {
      s.write(`tick${i}`);
      const echoed = await new Promise<string>((resolve, reject) => {
        const onClose = (): void => reject(new Error(`closed at tick ${i}, ${Date.now() - start} ms in`));
        s.once('close', onClose);
        s.once('data', (d: Buffer) => {
          s.removeListener('close', onClose);
          resolve(d.toString());
        });
      });
      t.equal(echoed, `tick${i}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    t.notOk(isClosed, `still open after ${Date.now() - start} ms`);
    const s2 = await m.refresh();
    t.equal(s2.connections['tunnel'], 1, 'an open session is counted as a tunnel');
    await c;
    t.pass('closed once silent');
  });

  void t.test('every session is gone from the worker registry', async (t) => {
    await waitFor(
      async () => {
        const s = await m.refresh();
        return s.connections['active'] === 0;
      },
      { timeoutMs: 5000, what: 'the registry to empty' },
    );
    t.same(m.status.connections, { active: 0, idle: 0, in_request: 0, tunnel: 0 });
  });
});
