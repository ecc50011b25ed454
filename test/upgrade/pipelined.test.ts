// Pipelined requests (batches sent in split writes) on one connection across
// repeated reloads: every response arrives, in order, on the same
// connection, and several generations served it.
import net from 'node:net';
import t from 'tap';
import { startMosn } from '../helpers/mosn.js';
import { testNodes } from '../helpers/nodes.js';
import { httpBackend } from '../helpers/backends.js';
import { waitFor } from '../helpers/wait.js';

/** Minimal HTTP/1.1 response reader for content-length responses. */
class ResponseReader {
  #buf = Buffer.alloc(0);
  readonly bodies: string[] = [];
  readonly statuses: number[] = [];
  readonly connectionHeaders: string[] = [];
  push(chunk: Buffer): void {
    this.#buf = Buffer.concat([this.#buf, chunk]);
    for (;;) {
      const end = this.#buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.#buf.subarray(0, end).toString('latin1');
      const len = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 'NaN');
      if (Number.isNaN(len)) throw new Error(`response without content-length: ${head}`);
      if (this.#buf.length < end + 4 + len) return;
      this.statuses.push(Number(head.slice(9, 12)));
      this.connectionHeaders.push(/\r\nconnection: *([^\r]*)/i.exec(head)?.[1] ?? '');
      this.bodies.push(this.#buf.subarray(end + 4, end + 4 + len).toString());
      this.#buf = this.#buf.subarray(end + 4 + len);
    }
  }
}

for (const node of await testNodes()) {
  void t.test(`pipelined requests stay in order across migrations (node ${node.version})`, async (t) => {
  const be = await httpBackend((req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.end(`ok ${req.url}`);
  });
  t.teardown(() => be.close());
  const m = await startMosn({
    log: { level: 'info', access_log: 'stdout' },
    listeners: [{ name: 'web', address: '127.0.0.1:0', virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }] }],
    clusters: [{ name: 'app', endpoints: [be.address] }],
  }, { node: node.path });
  t.teardown(() => m.kill());

  const sock = net.connect({ host: '127.0.0.1', port: m.port('web') });
  await new Promise<void>((r) => sock.once('connect', () => r()));
  const reader = new ResponseReader();
  let closed = false;
  let error: Error | undefined;
  sock.on('data', (c: Buffer) => reader.push(c));
  sock.on('close', () => (closed = true));
  sock.on('error', (e) => (error = e));

  let sent = 0;
  let stop = false;
  const BATCH = 8;
  const client = (async () => {
    let batch = 0;
    while (!stop) {
      batch++;
      let text = '';
      for (let i = 0; i < BATCH; i++) text += `GET /r${sent + i} HTTP/1.1\r\nhost: pipe\r\n\r\n`;
      const buf = Buffer.from(text);
      // Split the batch at a point that moves around, often mid-request.
      const cut = (batch * 37) % buf.length;
      sock.write(buf.subarray(0, cut));
      await new Promise((r) => setImmediate(r));
      sock.write(buf.subarray(cut));
      sent += BATCH;
      const want = sent;
      const deadline = Date.now() + 10_000;
      while (reader.bodies.length < want) {
        if (closed || error || Date.now() > deadline) return;
        await new Promise((r) => setTimeout(r, 1));
      }
    }
  })();

  const generations: number[] = [];
  for (let i = 0; i < 4; i++) {
    const r = await m.ctl('reload', '--json');
    t.equal(r.exitCode, 0, r.stderr);
    generations.push((JSON.parse(r.stdout) as { generation: number }).generation);
  }
  // Let the client run a little on the last generation too.
  const target = sent + 5 * BATCH;
  while (sent < target && !closed && !error) await new Promise((r) => setTimeout(r, 5));
  stop = true;
  await client;

  t.notOk(error, `no socket error (${error?.message ?? ''})`);
  t.notOk(closed, 'the connection stayed open');
  t.equal(reader.bodies.length, sent, 'one response per request');
  const outOfOrder = reader.bodies.filter((b, i) => b !== `ok /r${i}`).length;
  t.equal(outOfOrder, 0, 'every response matches its request, in order');
  t.ok(reader.statuses.every((s) => s === 200), 'all 200');
  t.notOk(reader.connectionHeaders.some((c) => c.toLowerCase() === 'close'), 'never told to close');
  sock.destroy();

  // Access log lines are written once each response has left: wait for all of them.
  await waitFor(() => m.accessLogs().filter((l) => l['host'] === 'pipe').length >= sent, { timeoutMs: 5000, what: `${sent} access log lines` });
  const served = new Set(m.accessLogs().filter((l) => l['host'] === 'pipe').map((l) => l['generation']));
  t.ok(served.size >= 3, `served by ${served.size} generations (${[...served].join(',')})`);
  t.same(generations, [2, 3, 4, 5]);
});
}
