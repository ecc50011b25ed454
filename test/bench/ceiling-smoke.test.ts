// bench:ceiling in a short form: nginx, every design of the featureless
// scripts/minimal-proxy.cjs and mosn-ts each carry one second of wrk load.
// Proves the tool and each minimal mode still run (jsall and jsup lean on
// Node's user-buffer reads, raw and rawc on llhttp's consume) and serve
// without errors; the numbers are not checked.
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { ROOT, childEnv } from '../helpers/mosn.js';

const TSX = path.join(ROOT, 'node_modules/tsx/dist/cli.mjs');
const CEILING = path.join(ROOT, 'bench/ceiling.ts');
const MODES = ['raw', 'rawc', 'jsup', 'jsall', 'srv'];

// wrk prints its version and exits 1; a missing binary throws or gives 127.
const wrk = await execa('wrk', ['--version'], { reject: false }).catch(() => undefined);
const nginx = await execa('nginx', ['-v'], { reject: false }).catch(() => undefined);
const missing = !wrk || !/wrk/.test(`${String(wrk.stdout)}${String(wrk.stderr)}`) ? 'wrk' : nginx?.exitCode !== 0 ? 'nginx' : undefined;

void t.test('bench:ceiling: nginx, each minimal proxy and mosn-ts under load', { skip: missing ? `${missing} is not installed (.ci/run installs it)` : false }, async (t) => {
  const r = await execa(process.execPath, [TSX, CEILING, '--rounds', '1', '--duration', '1', '--connections', '4', '--workers', '1', ...MODES.flatMap((m) => ['--minimal', m])], {
    reject: false,
    env: childEnv(),
    extendEnv: false,
    timeout: 180_000,
  });
  t.equal(r.exitCode, 0, `exit code (stderr: ${String(r.stderr).slice(-2000)})`);
  const err = String(r.stderr);
  for (const name of ['nginx', ...MODES.map((m) => `minimal ${m}`), 'mosn']) {
    t.match(err, new RegExp(`^round 1/1 ${name} +req/s [1-9]\\d*, CPU µs/req [\\d.]+, errors 0$`, 'm'), `${name} served without errors`);
    t.match(String(r.stdout), new RegExp(`^\\| ${name} \\| [\\d,]+ \\| [\\d.]+x \\| [\\d.]+ \\|$`, 'm'), `${name} has its row`);
  }
});
