// L4 streams under heavy backpressure across upgrades: fast writers, an echo
// backend that stalls most of the time, MBs in flight in kernel and proxy
// buffers at every migration. Byte-exact, no reset, no FIN to either peer.
import net from 'node:net';
import t from 'tap';
import { startMosn } from '../helpers/mosn.js';
import { testNodes } from '../helpers/nodes.js';
import { tcpBackend } from '../helpers/backends.js';
import { waitFor } from '../helpers/wait.js';

function patternAt(i: number): number {
  return (i * 31 + Math.floor(i / 251) * 7) & 0xff;
}

interface StreamResult {
  sent: number;
  received: number;
  corruptAt: number;
  error: string | undefined;
  peerClosedEarly: boolean;
}

function stream(port: number, totalBytes: number, stopSignal: { stop: boolean }): Promise<StreamResult> {
  return new Promise((resolve) => {
    const r: StreamResult = { sent: 0, received: 0, corruptAt: -1, error: undefined, peerClosedEarly: false };
    const sock = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    sock.on('data', (c: Buffer) => {
      if (r.corruptAt < 0) {
        for (let k = 0; k < c.length; k++) {
          if (c[k] !== patternAt(r.received + k)) {
            r.corruptAt = r.received + k;
            break;
          }
        }
      }
      r.received += c.length;
    });
    sock.on('end', () => {
      if (r.received < r.sent) r.peerClosedEarly = true;
    });
    sock.on('error', (e: NodeJS.ErrnoException) => (r.error = e.code ?? e.message));
    sock.on('close', () => resolve(r));
    sock.on('connect', () => {
      const write = (): void => {
        while (r.sent < totalBytes && !stopSignal.stop) {
          const b = Buffer.allocUnsafe(64 * 1024);
          for (let k = 0; k < b.length; k++) b[k] = patternAt(r.sent + k);
          r.sent += b.length;
          if (!sock.write(b)) {
            sock.once('drain', write);
            return;
          }
        }
        sock.end();
      };
      write();
    });
  });
}

for (const node of await testNodes()) {
  void t.test(`L4 streams under heavy backpressure stay byte-exact across upgrades (node ${node.version})`, async (t) => {
  // Echo backend that stops reading 600 ms of every 700 ms (pipe() would
  // resume on drain, so the echo is written by hand).
  const be = await tcpBackend((s) => {
    let stalled = false;
    s.on('error', () => undefined);
    s.on('data', (c: Buffer) => {
      if (!s.write(c)) s.pause();
    });
    s.on('drain', () => {
      if (!stalled) s.resume();
    });
    s.on('end', () => s.end());
    const stall = setInterval(() => {
      stalled = true;
      s.pause();
      setTimeout(() => {
        stalled = false;
        s.resume();
      }, 600);
    }, 700);
    s.on('close', () => clearInterval(stall));
  });
  t.teardown(() => be.close());
  const m = await startMosn({
    upgrade: { ready_timeout: '10s', drain_timeout: '20s' },
    log: { level: 'info', access_log: 'stdout' },
    listeners: [{ name: 'stream', address: '127.0.0.1:0', protocol: 'tcp', cluster: 'echo' }],
    clusters: [{ name: 'echo', endpoints: [be.address] }],
  }, { node: node.path });
  t.teardown(() => m.kill());

  const stop = { stop: false };
  const streams = [0, 1, 2].map(() => stream(m.port('stream'), 1024 * 1024 * 1024, stop));
  const rounds: { kind: string; migrated: number }[] = [];
  for (let i = 0; i < 6; i++) {
    await new Promise((r) => setTimeout(r, 400));
    const kind = i % 2 === 0 ? 'upgrade' : 'reload';
    const r = await m.ctl(kind, '--json');
    t.equal(r.exitCode, 0, `${kind} ${i}: ${r.stderr}`);
    rounds.push({ kind, migrated: (JSON.parse(r.stdout) as { migrated: number }).migrated });
  }
  stop.stop = true;
  const results = await Promise.all(streams);
  for (const [i, r] of results.entries()) {
    t.equal(r.error, undefined, `stream ${i}: no socket error`);
    t.equal(r.corruptAt, -1, `stream ${i}: every byte in order`);
    t.equal(r.received, r.sent, `stream ${i}: ${r.received} of ${r.sent} bytes echoed`);
    t.ok(r.sent > 4 * 1024 * 1024, `stream ${i}: several MB went through (${r.sent})`);
    t.notOk(r.peerClosedEarly, `stream ${i}: no early FIN`);
  }
  t.ok(rounds.filter((r) => r.migrated >= 3).length >= 4, `sessions migrated in most rounds: ${JSON.stringify(rounds)}`);
  // Access lines are written asynchronously by the worker that ended the session.
  await waitFor(() => m.accessLogs().filter((l) => l['kind'] === 'tcp').length >= 3, { what: '3 tcp access log lines' });
  const tcpLines = m.accessLogs().filter((l) => l['kind'] === 'tcp');
  t.equal(tcpLines.length, 3, 'one access log line per session, written where it ended');
  t.ok(tcpLines.every((l) => l['error'] === undefined), 'sessions ended cleanly');
  t.ok(tcpLines.every((l) => Number(l['migrations']) >= 3), `each session moved several times: ${tcpLines.map((l) => l['migrations']).join(',')}`);
});
}
