// bench:profile in a short form, both ways: V8 CPU profiles of the workers,
// and (--perf) Linux perf samples grouped by area. Proves the tool still runs
// and reports where the workers' time went; the shares are only checked to be
// there, not to have any value. scripts/perf-by-area.mjs's grouping is
// checked on a report of known rows.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { ROOT, childEnv } from '../helpers/mosn.js';

const TSX = path.join(ROOT, 'node_modules/tsx/dist/cli.mjs');
const PROFILE = path.join(ROOT, 'bench/profile.ts');
const BY_AREA = path.join(ROOT, 'scripts/perf-by-area.mjs');

const wrk = await execa('wrk', ['--version'], { reject: false }).catch(() => undefined);
const noWrk = !wrk || !/wrk/.test(`${String(wrk.stdout)}${String(wrk.stderr)}`) ? 'wrk is not installed (.ci/run installs it)' : false;

/** Whether `perf record` works here (installed, and allowed: containers often forbid perf_event_open). */
async function perfUsable(): Promise<string | false> {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mosn-perf-probe-')), 'perf.data');
  try {
    const r = await execa('perf', ['record', '-q', '-e', 'cpu-clock', '-o', out, '--', 'true'], { reject: false, all: true });
    return r.exitCode === 0 && fs.existsSync(out) ? false : `perf record does not work here: ${String(r.all).split('\n')[0]}`;
  } catch {
    return 'perf is not installed (.ci/run installs linux-perf)';
  } finally {
    fs.rmSync(path.dirname(out), { recursive: true, force: true });
  }
}

const profile = (...args: string[]) =>
  execa(process.execPath, [TSX, PROFILE, '--duration', '1', '--connections', '4', '--workers', '1', '--top', '5', ...args], {
    reject: false,
    env: childEnv(),
    extendEnv: false,
    timeout: 120_000,
  });

void t.test('bench:profile: V8 CPU profiles by area', { skip: noWrk }, async (t) => {
  const r = await profile();
  t.equal(r.exitCode, 0, `exit code (stderr: ${String(r.stderr).slice(-2000)})`);
  const out = String(r.stdout);
  t.match(out, /^keepalive: \d+ req\/s, .* errors 0 /m, 'the load ran without errors');
  t.match(out, /^== CPU\..*\.cpuprofile$/m, "a worker's profile is reported");
  t.match(out, /^mosn-ts\s+\d+ ms\s+[\d.]+% of busy$/m, 'mosn-ts code has its share');
});

void t.test('bench:profile --perf: perf samples by area', { skip: noWrk || (await perfUsable()) }, async (t) => {
  const before = new Set(fs.readdirSync('/tmp').filter((f) => /^perf-\d+\.map$/.test(f)));
  const r = await profile('--perf');
  t.equal(r.exitCode, 0, `exit code (stderr: ${String(r.stderr).slice(-2000)})`);
  const out = String(r.stdout);
  t.match(out, /^keepalive: \d+ req\/s, .* errors 0 /m, 'the load ran without errors');
  t.match(out, /^== perf, workers \d+ /m, 'the workers were sampled');
  t.match(out, /^\s*[\d.]+%\s+kernel$/m, 'kernel time has its own line');
  t.match(out, /^\s*[\d.]+%\s+JS: mosn-ts$/m, "mosn-ts's JIT frames are named (--perf-basic-prof)");
  const after = fs.readdirSync('/tmp').filter((f) => /^perf-\d+\.map$/.test(f) && !before.has(f));
  t.same(after, [], "the workers' perf maps are removed");
});

void t.test('bench:profile --gc: what the load cost in garbage collection', { skip: noWrk }, async (t) => {
  const r = await profile('--gc');
  t.equal(r.exitCode, 0, `exit code (stderr: ${String(r.stderr).slice(-2000)})`);
  const out = String(r.stdout);
  t.match(out, /^keepalive: \d+ req\/s, .* errors 0 /m, 'the load ran without errors');
  const allocated = /^ {2}allocated +([\d,.]+) bytes\/request$/m.exec(out);
  t.ok(allocated && Number(allocated[1]!.replace(/,/g, '')) > 0, `bytes allocated per request are reported: ${out}`);
  t.match(out, /^ {2}scavenges +\d+ /m, 'and the scavenges');
});

const GC_TRACE = `
[101:0x1]     3291 ms: pause=8.5 mutator=60.8 gc=s reduce_memory=0 scavenge=8.11 total_size_before=22804312 allocated=4000000 promoted=140000 new_space_survived=352312
some other line
[102:0x2]     3337 ms: pause=0.5 mutator=105.7 gc=s reduce_memory=0 scavenge=0.75 allocated=3000000 promoted=1000 new_space_survived=231464
[101:0x1]     4363 ms: pause=7.0 mutator=1.0 gc=mc reduce_memory=0 allocated=1000000 promoted=0
`;

void t.test('gc-trace sums --trace-gc-nvp lines', async (t) => {
  const { summariseGcTrace, formatGcSummary } = await import('../../bench/lib/gc-trace.js');
  const s = summariseGcTrace(GC_TRACE);
  t.same(s, { scavenges: 2, scavengePauseMs: 9, fullGcs: 1, fullGcPauseMs: 7, allocatedBytes: 8_000_000, promotedBytes: 141_000 });
  const text = formatGcSummary(s, 1000);
  t.match(text, /^ {2}allocated +8,000 bytes\/request$/m);
  t.match(text, /^ {2}promoted +141 bytes\/request$/m);
  t.match(text, /^ {2}scavenges +2 \(one per 500 requests\), pause 9\.00 µs\/request$/m);
  t.match(text, /^ {2}full GCs +1, pause 7\.00 µs\/request$/m);
});

const REPORT = `
# Samples: 8K of event 'cpu-clock'
#
# Overhead  Shared Object        Symbol
# ........  ...................  ......
#
    20.51%  [kernel.kallsyms]    [k] pvm_irq_enable
     3.37%  libc.so.6            [.] __GI___libc_write
     2.14%  node                 [.] v8::internal::(anonymous namespace)::Invoke
     1.05%  [JIT] tid 6109       [.] JS:*writeOrBuffer node:internal/streams/writable:548:23
     1.50%  [JIT] tid 6109       [.] JS:*#onHeadersComplete file:///work/main/dist/worker/upstream/h1-pool.js:239:23
     1.22%  node                 [.] Builtins_CallFunction_ReceiverIsAny
     0.99%  node                 [.] llhttp__internal_execute
     0.83%  node                 [.] uv__try_write
     0.59%  node                 [.] node::LibuvStreamWrap::ReadStart()::{lambda(uv_stream_s*, long, uv_buf_t const*)#2}::_FUN
     0.40%  node                 [.] v8::internal::Scavenger::ScavengeObject<v8::internal::FullHeapObjectSlot>
     0.34%  node                 [.] non-virtual thunk to node::LibuvStreamWrap::DoTryWrite(uv_buf_t**, unsigned long*)
     0.80%  [JIT] tid 6110       [.] JS:*writeOrBuffer node:internal/streams/writable:548:23
     0.10%  [vdso]               [.] __vdso_clock_gettime
`;

void t.test('perf-by-area groups perf report rows', async (t) => {
  const { parseReport, areaOf } = (await import(BY_AREA)) as {
    parseReport(this: void, text: string): [number, string, string][];
    areaOf(this: void, dso: string, sym: string): string;
  };
  const rows = parseReport(REPORT);
  t.equal(rows.length, 12, "every sample row is read, the header is not; one function's rows from two workers are one");
  t.same(
    rows.map(([pct, dso, sym]) => [pct, areaOf(dso, sym)]),
    [
      [20.51, 'kernel'],
      [3.37, 'libc (syscall wrappers, malloc, memcpy)'],
      [2.14, 'V8 runtime and C++<->JS calls'],
      [1.85, "JS: Node's own"], // 1.05 + 0.80
      [1.5, 'JS: mosn-ts'],
      [1.22, 'V8 builtins'],
      [0.99, 'llhttp'],
      [0.83, 'libuv'],
      [0.59, "Node's C++"],
      [0.4, 'V8 GC'],
      [0.34, "Node's C++"],
      [0.1, 'other: [vdso]'],
    ],
  );
  const r = await execa(process.execPath, [BY_AREA, '3'], { input: REPORT, reject: false });
  t.equal(r.exitCode, 0);
  const [areas = '', top = ''] = String(r.stdout).split('\n\n');
  const areaLines = areas.split('\n');
  t.equal(areaLines[0], ' 20.5%  kernel', 'areas are summed and sorted, largest first');
  t.ok(areaLines.includes("  0.9%  Node's C++"), "both of Node's C++ rows are summed (0.59 + 0.34)");
  t.equal(areaLines.length, 11, 'one line per area');
  const topLines = top.trim().split('\n');
  t.equal(topLines.length, 3, 'then the top 3 rows');
  t.match(topLines[1], /^\s+3\.37%\s+libc \(syscall wrappers, malloc, memcpy\)\s+__GI___libc_write$/, 'with their area and symbol');
  const empty = await execa(process.execPath, [BY_AREA], { input: 'no samples here\n', reject: false });
  t.equal(empty.exitCode, 1);
  t.match(String(empty.stderr), /perf-by-area: no samples in the input/);
});
