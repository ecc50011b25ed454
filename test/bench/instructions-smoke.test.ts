// bench:instructions in a short form: a worker under callgrind, a few
// hundred proxied requests, one instruction count per request printed.
// Proves the harness (stand-in supervisor, callgrind_control, reading the
// dump) still works; the count is only checked to be plausible, not fast.
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { ROOT, childEnv } from '../helpers/mosn.js';

const valgrind = await execa('valgrind', ['--version'], { reject: false }).catch(() => undefined);
const skip = !valgrind || valgrind.exitCode !== 0 ? 'valgrind is not installed (.ci/run installs it)' : false;

void t.test('bench:instructions counts instructions per request', { skip }, async (t) => {
  const r = await execa(process.execPath, [path.join(ROOT, 'node_modules/tsx/dist/cli.mjs'), path.join(ROOT, 'bench/instructions.ts'), '--requests', '300', '--warmup', '300', '--connections', '4'], {
    reject: false,
    env: childEnv(),
    extendEnv: false,
    timeout: 240_000,
  });
  t.equal(r.exitCode, 0, `exit code (stderr: ${String(r.stderr).slice(-2000)})`);
  const m = /small, 300 requests after 300 warm-up, 4 connections: ([\d,]+) instructions per request/.exec(String(r.stdout));
  t.ok(m, `a count was printed: ${String(r.stdout)}`);
  const n = Number(m?.[1]?.replace(/,/g, ''));
  // A proxied request takes tens of thousands of instructions (80-100k
  // measured); far outside that the counting itself is broken.
  t.ok(n > 5_000 && n < 5_000_000, `plausible count: ${n}`);
});
