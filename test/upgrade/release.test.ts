// scripts/release.sh builds a complete release directory; a running
// service upgrades (supervisor handover) into it, and its bin/ wrappers run.
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { childEnv, ROOT, startMosn, tempDir } from '../helpers/mosn.js';
import { get } from '../helpers/clients.js';

void t.test('release.sh builds a release that a running service upgrades into', async (t) => {
  const out = path.join(tempDir('mosn-rel-'), 'release');
  const built = await execa('bash', [path.join(ROOT, 'scripts/release.sh'), out], { cwd: ROOT, reject: false, env: childEnv(), extendEnv: false, timeout: 180_000 });
  t.equal(built.exitCode, 0, String(built.stderr));
  for (const f of ['package.json', 'dist/cli/mosn.js', 'dist/worker/main.js', 'node_modules/pino/package.json', 'release.json', 'bin/mosn', 'bin/mosnctl', 'systemd/mosn.service']) {
    t.ok(fs.existsSync(path.join(out, f)), `release has ${f}`);
  }
  t.notOk(fs.existsSync(path.join(out, 'node_modules/tap')), 'no dev dependencies');
  const v = await execa(path.join(out, 'bin/mosn'), ['version'], { reject: false, env: childEnv(), extendEnv: false });
  t.match(String(v.stdout), /^mosn-ts \d+\.\d+\.\d+/);

  const m = await startMosn({
    listeners: [{ name: 'web', address: '127.0.0.1:0', virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: 'ok' } }] }] }],
  });
  t.teardown(() => m.kill());
  const r = await m.ctl('upgrade', out, '--json');
  t.equal(r.exitCode, 0, r.stderr);
  const st = await m.refresh();
  const gens = st.generations as { release?: string }[];
  t.equal(fs.realpathSync(gens[0]?.release ?? ''), fs.realpathSync(out), 'workers run from the release');
  t.equal((await get(m.port('web'), '/')).body, 'ok');
  const s = await execa(path.join(out, 'bin/mosnctl'), ['--socket', m.socket, 'status', '--json'], { reject: false, env: childEnv(), extendEnv: false });
  t.equal(s.exitCode, 0, String(s.stderr));
});
