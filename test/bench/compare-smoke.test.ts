// bench:compare in its smoke form, for mosn-ts and the direct backend only
// (no apt-get, no peers): proves the harness still runs end to end and
// measures something in every scenario. Not a timed test: no number is
// compared with anything but zero.
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { ROOT, childEnv } from '../helpers/mosn.js';

interface Scenario {
  name: string;
  targets: string[];
  metrics: { key: string; better?: string }[];
  median: Record<string, Record<string, number>>;
  rounds: { target: string; error?: string }[];
}

interface Report {
  ok: boolean;
  smoke: boolean;
  targets: string[];
  load_tool: string;
  versions: Record<string, string>;
  scenarios: Scenario[];
  upgrade: { error?: string; median: { duration_ms: number; migration_per_s: number } } | null;
  results_file: string;
}

void t.test('bench:compare --smoke (mosn-ts and the direct backend)', async (t) => {
  const resultsFile = path.join(ROOT, 'bench/RESULTS.md');
  const before = fs.existsSync(resultsFile) ? fs.readFileSync(resultsFile, 'utf8') : undefined;
  const r = await execa(process.execPath, [path.join(ROOT, 'node_modules/tsx/dist/cli.mjs'), path.join(ROOT, 'bench/compare.ts'), '--smoke', '--targets', 'mosn,direct', '--no-install', '--json'], {
    reject: false,
    env: childEnv(),
    extendEnv: false,
    timeout: 120_000,
  });
  let rep: Report;
  try {
    rep = JSON.parse(String(r.stdout).trim().split('\n').pop() ?? '') as Report;
  } catch {
    t.fail(`bench:compare printed no report (exit ${r.exitCode}): ${String(r.stderr).slice(-3000)}`);
    return;
  }
  t.equal(r.exitCode, 0, `exit code (stderr: ${String(r.stderr).slice(-1500)})`);
  t.ok(rep.ok, 'every target measured in every scenario');
  t.ok(rep.smoke);
  t.same(rep.targets, ['mosn', 'direct'], 'only mosn-ts and the direct backend ran');
  t.ok(rep.versions['node'] && rep.versions['mosn-ts'], 'versions recorded');
  t.comment(`load tool: ${rep.load_tool}`);

  const names = rep.scenarios.map((s) => s.name);
  t.same(names, ['keepalive', 'chunked', 'large', 'upload', 'newconn', 'tcp-up', 'tcp-down', 'idle'], 'every scenario ran');
  for (const s of rep.scenarios) {
    t.same(s.targets, ['mosn', 'direct'], `${s.name}: both targets`);
    t.same(s.rounds.filter((x) => x.error), [], `${s.name}: no run failed`);
    for (const target of ['mosn', 'direct']) {
      // KB per connection is a difference of two RSS readings: with the smoke run's 200
      // connections a garbage collection in between can make it negative.
      // The kernel's part of the CPU is counted in 10 ms ticks: in a 1 s run it may be 0.
      for (const m of s.metrics.filter((m) => m.better && m.key !== 'kb_per_conn')) {
        const v = s.median[target]?.[m.key];
        if (m.key === 'sys_us') t.ok(typeof v === 'number' && v >= 0 && v <= (s.median[target]?.['cpu_us'] ?? 0), `${s.name} ${target} sys_us = ${v}, within cpu_us`);
        else t.ok(typeof v === 'number' && v > 0, `${s.name} ${target} ${m.key} = ${v} > 0`);
      }
    }
  }
  const idle = rep.scenarios.find((s) => s.name === 'idle');
  for (const target of ['mosn', 'direct']) t.ok((idle?.median[target]?.['held'] ?? 0) > 0, `${target} held idle connections`);

  t.ok(rep.upgrade && !rep.upgrade.error, `upgrade ran (${rep.upgrade?.error ?? 'ok'})`);
  t.ok((rep.upgrade?.median.migration_per_s ?? 0) > 0, `connections migrated/s = ${rep.upgrade?.median.migration_per_s}`);
  t.ok((rep.upgrade?.median.duration_ms ?? 0) > 0, `upgrade duration = ${rep.upgrade?.median.duration_ms} ms`);

  t.not(rep.results_file, resultsFile, 'a smoke run does not write bench/RESULTS.md');
  t.ok(fs.existsSync(rep.results_file), 'the smoke report was written');
  t.equal(fs.existsSync(resultsFile) ? fs.readFileSync(resultsFile, 'utf8') : undefined, before, 'bench/RESULTS.md unchanged');
});
