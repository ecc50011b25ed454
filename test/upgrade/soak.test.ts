// The soak harness in short form, under every Node major: mixed load
// (keep-alive GET/POST, new connections, slow clients, TCP streams,
// WebSockets) through alternating reload and upgrade rounds. Zero of every
// kind of loss, and every kind of connection actually migrated.
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { ROOT, childEnv } from '../helpers/mosn.js';
import { testNodes } from '../helpers/nodes.js';

interface Summary {
  ok: boolean;
  node: string;
  requests_total: number;
  websocket_messages: number;
  stream_bytes: number;
  errors: Record<string, number>;
  error_count: number;
  refused: number;
  resets: number;
  bytes_lost: number;
  bytes_corrupt: number;
  round_failures: number;
  slow_client_reconnects: number;
  connections: { migrated: Record<string, number>; drained: Record<string, number>; force_closed: Record<string, number> };
}

for (const node of await testNodes()) {
  void t.test(`soak, 6 rounds (node ${node.version})`, async (t) => {
    const r = await execa(process.execPath, [path.join(ROOT, 'node_modules/tsx/dist/cli.mjs'), path.join(ROOT, 'bench/soak.ts'), '--rounds', '6', '--interval', '600', '--json', '--node', node.path], {
      reject: false,
      env: childEnv(),
      extendEnv: false,
      timeout: 180_000,
    });
    let s: Summary;
    try {
      s = JSON.parse(String(r.stdout).trim().split('\n').pop() ?? '') as Summary;
    } catch {
      t.fail(`soak printed no summary (exit ${r.exitCode}): ${String(r.stderr).slice(-2000)}`);
      return;
    }
    t.equal(s.node, node.version, 'mosn ran under the intended Node');
    t.same(s.errors, {}, 'no errors of any kind');
    t.equal(s.error_count, 0);
    t.equal(s.refused, 0, 'no refused connection');
    t.equal(s.resets, 0, 'no reset');
    t.equal(s.bytes_lost, 0, 'no byte lost');
    t.equal(s.bytes_corrupt, 0, 'no byte corrupted');
    t.equal(s.round_failures, 0, 'every round succeeded');
    t.equal(s.slow_client_reconnects, 0, 'slow keep-alive clients never had to reconnect');
    t.same(s.connections.force_closed, {}, 'nothing force-closed');
    for (const kind of ['http', 'tcp', 'tunnel']) t.ok((s.connections.migrated[kind] ?? 0) > 0, `${kind} connections migrated (${s.connections.migrated[kind] ?? 0})`);
    t.ok(s.requests_total > 1000, `load ran (${s.requests_total} requests)`);
    t.ok(s.stream_bytes > 1_000_000, `streams ran (${s.stream_bytes} bytes)`);
    t.ok(s.websocket_messages > 100, `websockets ran (${s.websocket_messages} messages)`);
    t.equal(r.exitCode, 0, 'soak exit code');
    t.ok(s.ok);
  });
}
