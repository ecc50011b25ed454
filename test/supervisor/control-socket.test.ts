// The control socket: mode 0660, NDJSON; anything malformed gets an error
// reply with MOSN_ERR_CONTROL_BAD_REQUEST and never hurts the supervisor.
import fs from 'node:fs';
import net from 'node:net';
import t, { type Test } from 'tap';
import { MAX_CONTROL_LINE } from '../../src/common/control.js';
import { startMosn, type MosnProcess } from '../helpers/mosn.js';

const CONFIG = {
  workers: 1,
  listeners: [
    {
      name: 'web',
      address: '127.0.0.1:0',
      virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: 'ok' } }] }],
    },
  ],
};

interface Conversation {
  /** Every reply line, parsed. */
  readonly replies: Record<string, any>[];
  /** True when the supervisor closed the connection. */
  readonly closed: boolean;
}

/**
 * Writes `data` to the control socket, then collects replies until `count`
 * arrived (and, with `untilClose`, the supervisor closed), or the supervisor
 * closes, or 5 s pass: then whatever came.
 */
function converse(socket: string, data: string | Buffer, count: number, untilClose = false): Promise<Conversation> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socket);
    const replies: Record<string, any>[] = [];
    let buf = '';
    let closed = false;
    const finish = (): void => {
      clearTimeout(timer);
      s.destroy();
      resolve({ replies, closed });
    };
    const timer = setTimeout(finish, 5000);
    s.setEncoding('utf8');
    s.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    s.on('connect', () => s.write(data));
    s.on('data', (chunk: string) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        replies.push(JSON.parse(buf.slice(0, nl)) as Record<string, any>);
        buf = buf.slice(nl + 1);
      }
      if (replies.length >= count && !untilClose) finish();
    });
    s.on('end', () => {
      closed = true;
      finish();
    });
  });
}

async function assertStillRunning(t: Test, m: MosnProcess): Promise<void> {
  const s = await m.refresh();
  t.equal(s.phase, 'running', 'supervisor still running');
  t.equal(m.proc.exitCode, null, 'supervisor process alive');
}

void t.test('control socket', async (t) => {
  const m = await startMosn(CONFIG);
  t.teardown(() => m.kill());

  await t.test('socket file is a socket with mode 0660', async (t) => {
    const st = fs.statSync(m.socket);
    t.ok(st.isSocket(), 'is a socket');
    t.equal((st.mode & 0o777).toString(8), '660');
  });

  await t.test('a good request: id echoed, ok:true, result', async (t) => {
    const c = await converse(m.socket, JSON.stringify({ id: 'abc', command: 'status' }) + '\n', 1);
    t.equal(c.replies.length, 1);
    t.equal(c.replies[0]!['id'], 'abc');
    t.equal(c.replies[0]!['ok'], true);
    t.equal(c.replies[0]!['result']['pid'], m.pid);
  });

  await t.test('several requests on one connection, answered in order of completion with their ids', async (t) => {
    const c = await converse(m.socket, [1, 2, 3].map((id) => JSON.stringify({ id, command: 'status' }) + '\n').join(''), 3);
    t.same(c.replies.map((r) => r['id']).sort(), [1, 2, 3]);
    t.ok(c.replies.every((r) => r['ok'] === true));
  });

  const bad: [string, string, RegExp, unknown][] = [
    ['malformed JSON', '{"command": "status"\n', /not valid JSON/, null],
    ['a JSON array', '["status"]\n', /must be a JSON object/, null],
    ['a JSON string', '"status"\n', /must be a JSON object/, null],
    ['null', 'null\n', /must be a JSON object/, null],
    ['an unknown command', '{"id":7,"command":"explode"}\n', /unknown command "explode"; known: status, stop, reload, upgrade/, 7],
    ['a missing command', '{"id":8}\n', /unknown command/, 8],
    ['non-object args', '{"id":9,"command":"status","args":[1]}\n', /"args" must be an object/, 9],
  ];
  for (const [what, line, message, id] of bad) {
    await t.test(`${what}: MOSN_ERR_CONTROL_BAD_REQUEST`, async (t) => {
      const c = await converse(m.socket, line, 1);
      t.equal(c.replies.length, 1, 'one reply');
      const r = c.replies[0]!;
      t.equal(r['ok'], false);
      t.equal(r['id'], id, 'id echoed when there was one, else null');
      t.equal(r['error']['code'], 'MOSN_ERR_CONTROL_BAD_REQUEST');
      t.match(r['error']['message'], message);
      await assertStillRunning(t, m);
    });
  }

  await t.test('a client that half-closes right after its request (socat, nc -N) still gets the reply', async (t) => {
    const c = await new Promise<Conversation>((resolve, reject) => {
      const s = net.connect(m.socket, () => s.end(JSON.stringify({ id: 'hc', command: 'status' }) + '\n'));
      let buf = '';
      s.setEncoding('utf8');
      s.on('data', (d: string) => (buf += d));
      s.on('error', reject);
      s.on('close', () =>
        resolve({
          replies: buf
            .split('\n')
            .filter((l) => l !== '')
            .map((l) => JSON.parse(l) as Record<string, any>),
          closed: true,
        }),
      );
    });
    t.equal(c.replies.length, 1, 'one reply before the supervisor closed');
    t.equal(c.replies[0]?.['id'], 'hc');
    t.equal(c.replies[0]?.['ok'], true);
  });

  await t.test('a bad line does not spoil the next one on the same connection', async (t) => {
    const c = await converse(m.socket, 'nope\n{"id":2,"command":"status"}\n', 2);
    t.equal(c.replies[0]!['error']['code'], 'MOSN_ERR_CONTROL_BAD_REQUEST');
    t.equal(c.replies[1]!['id'], 2);
    t.equal(c.replies[1]!['ok'], true);
  });

  /** A valid status request exactly `bytes` long (without its newline). */
  const padded = (id: number, bytes: number): string => {
    const head = JSON.stringify({ id, command: 'status', args: { pad: '' } });
    return head.replace('"pad":""', `"pad":"${'z'.repeat(bytes - head.length)}"`);
  };

  for (const over of [1, MAX_CONTROL_LINE]) {
    await t.test(`a valid request ${over} byte(s) over the limit, ending with a newline, is refused, not run`, async (t) => {
      const line = padded(1, MAX_CONTROL_LINE + over);
      const c = await converse(m.socket, line + '\n', 1, true);
      t.equal(c.replies.length, 1, 'one reply');
      t.equal(c.replies[0]!['ok'], false, 'refused');
      t.equal(c.replies[0]!['error']?.['code'], 'MOSN_ERR_CONTROL_BAD_REQUEST');
      t.match(c.replies[0]!['error']?.['message'], /longer than 65536 bytes/);
      t.ok(c.closed, 'the connection is closed after it');
      await assertStillRunning(t, m);
    });
  }

  await t.test('an oversized line with no newline at all is refused and the connection closed', async (t) => {
    const c = await converse(m.socket, Buffer.alloc(MAX_CONTROL_LINE * 3, 'y'), 1, true);
    t.equal(c.replies.length, 1, 'exactly one reply');
    t.equal(c.replies[0]!['error']?.['code'], 'MOSN_ERR_CONTROL_BAD_REQUEST');
    t.ok(c.closed, 'closed');
    await assertStillRunning(t, m);
  });

  await t.test('a line of exactly the limit is accepted', async (t) => {
    const line = padded(3, MAX_CONTROL_LINE);
    t.equal(Buffer.byteLength(line), MAX_CONTROL_LINE);
    const c = await converse(m.socket, line + '\n', 1);
    t.equal(c.replies[0]!['ok'], true, 'answered');
  });

  await t.test('binary garbage and a client that hangs up mid-line', async (t) => {
    await new Promise<void>((resolve) => {
      const s = net.connect(m.socket, () => {
        s.end(Buffer.from([0xff, 0xfe, 0x00, 0x7b]));
      });
      s.on('close', () => resolve());
      s.on('error', () => resolve());
      s.resume();
    });
    const c = await converse(m.socket, Buffer.from([0xff, 0xfe, 0x00, 0x0a]), 1);
    t.equal(c.replies[0]!['error']['code'], 'MOSN_ERR_CONTROL_BAD_REQUEST');
    await assertStillRunning(t, m);
  });
});
