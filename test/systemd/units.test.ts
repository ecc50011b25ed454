// The systemd units: `systemd-analyze verify` has nothing to say (it exits 0
// even on unknown keys, so any output is a failure), and the directives the
// design depends on are there.
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { ROOT, tempDir } from '../helpers/mosn.js';

const haveAnalyze = fs.existsSync('/usr/bin/systemd-analyze') || fs.existsSync('/bin/systemd-analyze');

function directives(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}

void t.test('mosn.service has what handover, reload and stop need', async (t) => {
  const d = directives(fs.readFileSync(path.join(ROOT, 'systemd/mosn.service'), 'utf8'));
  t.same(d.get('Type'), ['notify']);
  t.same(d.get('NotifyAccess'), ['all'], 'the successor supervisor notifies too');
  t.same(d.get('KillMode'), ['mixed']);
  t.match(d.get('ExecStart')?.[0] ?? '', /^\/opt\/mosn\/current\/bin\/mosn start -c \/etc\/mosn\/mosn\.yaml$/);
  t.match(d.get('ExecReload')?.[0] ?? '', /mosnctl -c \/etc\/mosn\/mosn\.yaml reload$/, 'reload blocks and fails on a bad config');
  t.ok(Number(d.get('TimeoutStopSec')?.[0]) > 30, 'TimeoutStopSec above the default drain_timeout (30s)');
  t.same(d.get('User'), ['mosn']);
  t.same(d.get('AmbientCapabilities'), ['CAP_NET_BIND_SERVICE']);
  for (const k of ['NoNewPrivileges', 'ProtectSystem', 'ProtectHome', 'PrivateTmp']) t.ok(d.has(k), `hardening: ${k}`);
});

void t.test('systemd-analyze verify prints nothing', { skip: haveAnalyze ? false : 'systemd-analyze not installed' }, async (t) => {
  // Point the units at an existing release layout so ExecStart= resolves.
  const dir = tempDir('mosn-units-');
  fs.mkdirSync(path.join(dir, 'rel/bin'), { recursive: true });
  for (const b of ['mosn', 'mosnctl']) fs.writeFileSync(path.join(dir, 'rel/bin', b), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  const units = ['mosn.service', 'mosn-web.socket'];
  for (const u of units) fs.writeFileSync(path.join(dir, u), fs.readFileSync(path.join(ROOT, 'systemd', u), 'utf8').replaceAll('/opt/mosn/current', path.join(dir, 'rel')));
  const r = await execa('systemd-analyze', ['verify', ...units.map((u) => `./${u}`)], { cwd: dir, reject: false });
  t.equal(r.exitCode, 0);
  t.equal(String(r.stderr).trim(), '', 'no warnings');
  t.equal(String(r.stdout).trim(), '', 'no output');
});
