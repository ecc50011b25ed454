// bench:ab in a short form: two variants of this checkout (one with an extra
// environment variable), one round of 1 s each under wrk. Proves the harness
// (variants, alternation, /proc readings, medians) still works; the numbers
// are only checked to be plausible, not fast. Bad variants get a clear error.
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { ROOT, childEnv } from '../helpers/mosn.js';

const TSX = path.join(ROOT, 'node_modules/tsx/dist/cli.mjs');
const AB = path.join(ROOT, 'bench/ab.ts');
const wrk = await execa('wrk', ['--version'], { reject: false }).catch(() => undefined);
// wrk prints its version and exits 1; a missing binary throws or gives 127.
const skip = !wrk || !/wrk/.test(`${String(wrk.stdout)}${String(wrk.stderr)}`) ? 'wrk is not installed (.ci/run installs it)' : false;

interface Summary {
  scenario: string;
  variants: { variant: string; rps: number; cpu_us_per_req: number; sys_us_per_req: number; faults_per_req: number; errors: number }[];
}

void t.test('bench:ab compares two variants', { skip }, async (t) => {
  const r = await execa(
    process.execPath,
    [TSX, AB, '--variant', ROOT, '--variant', `${ROOT}+MOSN_AB_SMOKE=1`, '--rounds', '1', '--duration', '1', '--connections', '4', '--workers', '1', '--json'],
    { reject: false, env: childEnv(), extendEnv: false, timeout: 120_000 },
  );
  t.equal(r.exitCode, 0, `exit code (stderr: ${String(r.stderr).slice(-2000)})`);
  const s = JSON.parse(String(r.stdout)) as Summary;
  t.equal(s.scenario, 'keepalive');
  t.same(
    s.variants.map((v) => v.variant),
    [ROOT, `${ROOT}+MOSN_AB_SMOKE=1`],
  );
  for (const v of s.variants) {
    t.ok(v.rps > 0, `${v.variant}: ${v.rps} req/s`);
    t.equal(v.errors, 0, `${v.variant}: no errors`);
    // A proxied request costs tens of µs of CPU here; far outside that the reading is broken.
    t.ok(v.cpu_us_per_req > 1 && v.cpu_us_per_req < 100_000, `${v.variant}: plausible CPU ${v.cpu_us_per_req} µs/req`);
    t.ok(v.sys_us_per_req >= 0 && v.sys_us_per_req <= v.cpu_us_per_req, `${v.variant}: the kernel's part ${v.sys_us_per_req} µs/req is within the CPU`);
    t.ok(v.faults_per_req >= 0, `${v.variant}: faults per request read (${v.faults_per_req})`);
  }
});

void t.test('bench:ab names what is wrong with its options', async (t) => {
  const run = (...args: string[]) => execa(process.execPath, [TSX, AB, ...args], { reject: false, env: childEnv(), extendEnv: false, timeout: 60_000 });
  const one = await run('--variant', ROOT);
  t.equal(one.exitCode, 2);
  t.match(String(one.stderr), /bench:ab: give at least two --variant/);
  const bad = await run('--variant', `${ROOT}+NOVALUE`, '--variant', ROOT);
  t.equal(bad.exitCode, 2);
  t.match(String(bad.stderr), /"NOVALUE" is not NAME=VALUE/);
  const missing = await run('--variant', '/nonexistent-checkout', '--variant', ROOT);
  t.equal(missing.exitCode, 2);
  t.match(String(missing.stderr), /\/nonexistent-checkout\/dist\/cli\/mosn\.js is missing/);
});
