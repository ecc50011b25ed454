// systemd socket activation, without systemd: a launcher binds the socket,
// passes it as fd 3 with LISTEN_FDS/LISTEN_FDNAMES/LISTEN_PID and execs mosn
// (as systemd does). The listener named in LISTEN_FDNAMES is adopted (same
// port, served), the others are bound as usual, and a handover keeps it.
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { get } from '../helpers/clients.js';
import { childEnv, MOSN, MosnProcess, ROOT, tempDir, testConfig, writeConfig, type MosnSubprocess } from '../helpers/mosn.js';
import { waitFor } from '../helpers/wait.js';

void t.test('adopts LISTEN_FDS by name, binds the rest, keeps it across a handover', async (t) => {
  const dir = tempDir('mosn-sockact-');
  const cfg = testConfig(
    {
      listeners: [
        { name: 'web', address: '127.0.0.1:0', virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: 'activated' } }] }] },
        { name: 'other', address: '127.0.0.1:0', virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: 'bound' } }] }] },
      ],
    },
    dir,
  );
  const file = writeConfig(cfg, dir);
  const proc = execa('python3', [path.join(ROOT, 'test/helpers/socket-activate.py'), 'web', process.execPath, MOSN, 'start', '-c', file], {
    reject: false,
    buffer: false,
    env: childEnv(),
    extendEnv: false,
    stdin: 'ignore',
  }) as unknown as MosnSubprocess;
  const m = new MosnProcess(proc, dir, file, String(cfg['control_socket']));
  t.teardown(() => m.kill());
  await waitFor(() => m.lines.some((l) => l.startsWith('PORT ')), { what: 'the launcher to bind' });
  const port = Number(m.lines.find((l) => l.startsWith('PORT '))!.slice(5));
  await waitFor(async () => (await m.refresh().catch(() => undefined))?.phase === 'running', { timeoutMs: 20_000, what: 'mosn to run' });
  t.equal(m.port('web'), port, 'the "web" listener is the activated socket');
  t.not(m.port('other'), port, '"other" was bound by mosn itself');
  t.ok(m.logs().some((l) => l['msg'] === 'listener adopted from systemd' && l['listener'] === 'web'), 'logged the adoption');
  t.equal((await get(port, '/')).body, 'activated');
  t.equal((await get(m.port('other'), '/')).body, 'bound');

  const r = await m.ctl('upgrade', '--json');
  t.equal(r.exitCode, 0, r.stderr);
  await m.refresh();
  t.equal(m.port('web'), port, 'same socket after the handover');
  t.equal((await get(port, '/')).body, 'activated');
});
