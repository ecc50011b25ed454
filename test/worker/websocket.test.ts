// WebSocket through the HTTP listener: the Upgrade handshake reaches the
// backend, frames flow both ways (text, binary, ping/pong), close handshakes
// from either side pass through, and the session is logged as a tunnel.
import crypto from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import net from 'node:net';
import t from 'tap';
import WebSocket, { WebSocketServer } from 'ws';
import { deadPort } from '../helpers/backends.js';
import { startMosn } from '../helpers/mosn.js';
import { once, waitFor } from '../helpers/wait.js';

interface Message {
  data: Buffer;
  binary: boolean;
}

/** Everything a client socket receives, in order, from the moment it is created. */
class Inbox {
  readonly #queue: Message[] = [];
  readonly #waiters: ((m: Message) => void)[] = [];
  constructor(ws: WebSocket) {
    ws.on('message', (data: WebSocket.RawData, binary: boolean) => {
      const m = { data: Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer), binary };
      const w = this.#waiters.shift();
      if (w) w(m);
      else this.#queue.push(m);
    });
  }

  next(timeoutMs = 5000): Promise<Message> {
    const m = this.#queue.shift();
    if (m) return Promise.resolve(m);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no message in time')), timeoutMs);
      this.#waiters.push((msg) => {
        clearTimeout(timer);
        resolve(msg);
      });
    });
  }
}

function open(url: string): Promise<{ ws: WebSocket; inbox: Inbox }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { handshakeTimeout: 5000 });
    const inbox = new Inbox(ws);
    ws.once('open', () => {
      ws.removeListener('error', reject);
      // later errors surface as a close event or a missing message
      ws.on('error', () => undefined);
      resolve({ ws, inbox });
    });
    ws.once('error', reject);
  });
}

function closeEvent(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })));
}

void t.test('websocket through the proxy', { timeout: 60_000 }, async (t) => {
  const handshakes: { url: string; headers: IncomingHttpHeaders }[] = [];
  const serverCloses: { code: number; reason: string }[] = [];
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, verifyClient: (info: { req: IncomingMessage }) => info.req.url !== '/forbidden' });
  await once(wss, 'listening');
  const wsPort = (wss.address() as { port: number }).port;
  wss.on('connection', (ws, req: IncomingMessage) => {
    handshakes.push({ url: req.url ?? '', headers: req.headers });
    ws.on('error', () => undefined);
    ws.on('message', (data: WebSocket.RawData, binary: boolean) => {
      if (!binary && Buffer.isBuffer(data) && data.toString() === 'close-me') ws.close(4002, 'server-bye');
      else ws.send(data, { binary });
    });
    ws.on('close', (code: number, reason: Buffer) => serverCloses.push({ code, reason: reason.toString() }));
    ws.send('hello from server');
  });
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  );
  const dead = await deadPort();

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
              { match: { prefix: '/dead' }, route: { cluster: 'dead' } },
              { match: { prefix: '/' }, route: { cluster: 'ws' } },
            ],
          },
        ],
      },
    ],
    clusters: [
      { name: 'ws', endpoints: [`127.0.0.1:${wsPort}`] },
      { name: 'dead', endpoints: [`127.0.0.1:${dead}`] },
    ],
  });
  t.teardown(() => m.kill());
  const base = `ws://127.0.0.1:${m.port('web')}`;

  void t.test('messages both ways, text and binary; client-initiated close', async (t) => {
    const { ws, inbox } = await open(`${base}/chat?room=1`);
    const hello = await inbox.next();
    t.equal(hello.data.toString(), 'hello from server', 'server-initiated message');
    t.equal(hello.binary, false);

    const hs = handshakes.at(-1)!;
    t.equal(hs.url, '/chat?room=1', 'the handshake reached the backend with its path');
    t.equal(hs.headers['upgrade']?.toLowerCase(), 'websocket', 'Upgrade kept for the handshake');
    t.match(String(hs.headers['connection']), /upgrade/i, 'Connection: upgrade kept for the handshake');
    t.equal(hs.headers['x-forwarded-for'], '127.0.0.1');

    ws.send('hi there');
    const text = await inbox.next();
    t.equal(text.data.toString(), 'hi there');
    t.equal(text.binary, false, 'text stays text');

    for (const size of [1, 300 * 1024, 2 * 1024 * 1024]) {
      const payload = crypto.randomBytes(size);
      ws.send(payload);
      const back = await inbox.next();
      t.equal(back.binary, true, `binary stays binary (${size} bytes)`);
      t.ok(back.data.equals(payload), `binary payload intact (${size} bytes)`);
    }

    const st = await m.refresh();
    t.equal(st.connections['tunnel'], 1, 'the upgraded connection is counted as a tunnel');
    t.equal(st.connections['in_request'], 0);

    const pong = new Promise<Buffer>((resolve) => ws.once('pong', resolve));
    ws.ping('are-you-there');
    t.equal((await pong).toString(), 'are-you-there', 'ping/pong pass through');

    const closing = closeEvent(ws);
    const before = serverCloses.length;
    ws.close(4001, 'client-bye');
    t.same(await closing, { code: 4001, reason: 'client-bye' }, 'the server echoed the close frame');
    await waitFor(() => serverCloses.length > before, { timeoutMs: 5000, what: 'the server to see the close' });
    t.same(serverCloses[before], { code: 4001, reason: 'client-bye' });

    const line = await m.accessLine('/chat?room=1');
    t.equal(line['kind'], 'tunnel');
    t.equal(line['status'], 101);
    t.equal(line['upstream'], `127.0.0.1:${wsPort}`);
    t.equal(line['error'], undefined, 'a clean close is not an error');
    t.ok(Number(line['bytes_in']) > 2 * 1024 * 1024, `bytes_in ${String(line['bytes_in'])}`);
    t.ok(Number(line['bytes_out']) > 2 * 1024 * 1024, `bytes_out ${String(line['bytes_out'])}`);
  });

  void t.test('server-initiated close', async (t) => {
    const { ws, inbox } = await open(`${base}/server-closes`);
    await inbox.next();
    const closing = closeEvent(ws);
    ws.send('close-me');
    t.same(await closing, { code: 4002, reason: 'server-bye' });
    const line = await m.accessLine('/server-closes');
    t.equal(line['kind'], 'tunnel');
    t.equal(line['status'], 101);
  });

  void t.test('a handshake the backend refuses comes back as the backend sent it', async (t) => {
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const ws = new WebSocket(`${base}/forbidden`, { handshakeTimeout: 5000 });
      ws.on('error', () => undefined);
      ws.once('open', () => reject(new Error('the backend was supposed to refuse')));
      ws.once('unexpected-response', (req, r: IncomingMessage) => {
        r.resume();
        req.destroy();
        resolve(r);
      });
    });
    t.equal(res.statusCode, 401);
    t.notOk(res.headers['x-mosn-error'], 'the backend’s answer, not a proxy error');
    const line = await m.accessLine('/forbidden');
    t.equal(line['kind'], 'tunnel');
    t.equal(line['status'], 401);
  });

  void t.test('upstream refused: the handshake gets a 502', async (t) => {
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const ws = new WebSocket(`${base}/dead`, { handshakeTimeout: 5000 });
      ws.on('error', () => undefined);
      ws.once('open', () => reject(new Error('opened a tunnel to nowhere')));
      ws.once('unexpected-response', (req, r: IncomingMessage) => {
        r.resume();
        req.destroy();
        resolve(r);
      });
    });
    t.equal(res.statusCode, 502);
    t.equal(res.headers['x-mosn-error'], 'MOSN_ERR_UPSTREAM_CONNECT');
    const line = await m.accessLine('/dead');
    t.equal(line['kind'], 'tunnel');
    t.equal(line['status'], 502);
    t.equal(line['error'], 'MOSN_ERR_UPSTREAM_CONNECT');
  });

  void t.test('clients that reset during the handshake do not take the worker down', { timeout: 20_000 }, async (t) => {
    const pids = m.workerPids();
    for (let i = 0; i < 30; i++) {
      const s = net.connect(m.port('web'), '127.0.0.1');
      s.on('error', () => undefined);
      await once(s, 'connect');
      s.write(`GET /dead/${i} HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
      // gone before the proxy can answer that the upstream refused
      await new Promise((r) => setImmediate(r));
      s.resetAndDestroy();
    }
    // the proxy still answers, from the same worker
    const { ws, inbox } = await open(`${base}/after-resets`);
    t.equal((await inbox.next()).data.toString(), 'hello from server');
    ws.close();
    await m.refresh();
    t.same(m.workerPids(), pids, 'same worker process');
    t.notOk(
      m.logs().some((l) => l['msg'] === 'worker exited'),
      'no worker exited',
    );
  });
});
