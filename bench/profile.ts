// npm run bench:profile -- [--scenario keepalive|chunked|large|upload|newconn]
//   [--duration S] [--connections C] [--workers N] [--top N] [--keep] [--perf | --gc]
//
// CPU-profiles mosn-ts's workers under one wrk load (the same backend, config
// and request shapes as bench:compare), then prints where their time went:
// self time by area (scripts/cpuprofile-by-area.mjs) and the top functions
// (scripts/cpuprofile-top.mjs), per worker. The profiles stay in the printed
// directory with --keep (open them in Chrome DevTools or speedscope).
// Profiling slows the workers down: read shares, not req/s.
//
// --gc runs the workers with V8's --trace-gc-nvp instead and prints what the
// load cost in garbage collection, per request: bytes allocated and
// promoted, scavenges and full GCs and their pauses (bench/lib/gc-trace.ts).
//
// --perf samples the workers with Linux perf instead (`perf record -e
// cpu-clock`, workers on --perf-basic-prof so JIT frames have names) and
// groups the samples by area with scripts/perf-by-area.mjs: kernel, JS
// (mosn-ts's, Node's), V8's C++, Node's C++, libuv, llhttp, libc. A V8
// profile charges a syscall's kernel time (on loopback: the TCP delivery) to
// the JS function that made it; perf shows kernel and user time apart.
// Needs perf (Debian: apt-get install linux-perf) and root or
// kernel.perf_event_paranoid <= 1.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { readOptions } from './lib/args.js';
import { HTTP_SCENARIOS, HTTP_SHAPES, type HttpScenario } from './lib/shapes.js';
import { ensureTools, which } from './lib/install.js';
import { sleep } from './lib/proc.js';
import { formatGcSummary, summariseGcTrace } from './lib/gc-trace.js';
import { startBackend, startMosn } from './lib/targets.js';
import { runWrk } from './lib/wrk.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function parse(argv: string[]) {
  const o = { scenario: 'keepalive' as HttpScenario, durationS: 10, connections: 64, workers: os.availableParallelism(), top: 25, keep: false, perf: false, gc: false };
  readOptions('profile', argv, (flag, r) => {
    switch (flag) {
      case '--scenario': o.scenario = r.choice([...HTTP_SCENARIOS]); break;
      case '--duration': o.durationS = r.whole(); break;
      case '--connections': o.connections = r.whole(); break;
      case '--workers': o.workers = r.whole(); break;
      case '--top': o.top = r.whole(); break;
      case '--keep': o.keep = true; break;
      case '--perf': o.perf = true; break;
      case '--gc': o.gc = true; break;
      default: return false;
    }
    return true;
  });
  return o;
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  const tools = await ensureTools({ nginx: false, nginxStream: false, haproxy: false, wrk: true }, true, (m) => process.stderr.write(`bench:profile: ${m}\n`));
  if (!tools.wrk) throw new Error('wrk is needed (apt-get install wrk)');
  const perf = o.perf ? await which('perf') : undefined;
  if (o.perf && !perf) throw new Error('--perf needs Linux perf (Debian: apt-get install linux-perf)');
  if (o.perf && o.gc) throw new Error('--perf and --gc are two different runs: pick one');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mosn-profile-'));
  const profDir = path.join(dir, 'profiles');
  fs.mkdirSync(profDir);
  const gcLog = o.gc ? path.join(dir, 'gc.log') : undefined;
  let gcReport = '';
  const backend = await startBackend(ROOT, o.workers);
  const mosn = await startMosn(ROOT, {
    dir,
    workers: o.workers,
    backend,
    maxConnections: o.connections * 2,
    httpConnections: o.connections,
    mosnEnv: { MOSN_WORKER_NODE_ARGS: perf ? '--perf-basic-prof' : o.gc ? '--trace-gc-nvp' : `--cpu-prof --cpu-prof-dir=${profDir}` },
    mosnStdout: gcLog,
  });
  const perfData = path.join(profDir, 'perf.data');
  let workerPids: number[] = [];
  try {
    const shape = HTTP_SHAPES[o.scenario];
    const job = { ...shape, port: mosn.http, connections: o.connections, threads: 2 };
    await runWrk(tools.wrk, dir, { ...job, durationMs: 2000 }); // warm-up
    workerPids = await mosn.workerPids();
    const gcFrom = gcLog && fs.existsSync(gcLog) ? fs.statSync(gcLog).size : 0;
    const recorder = perf ? execa(perf, ['record', '-q', '-e', 'cpu-clock', '-F', '999', '-p', workerPids.join(','), '-o', perfData], { reject: false, all: true }) : undefined;
    const r = await runWrk(tools.wrk, dir, { ...job, durationMs: o.durationS * 1000 });
    if (recorder) {
      recorder.kill('SIGINT');
      const done = await recorder;
      if (!fs.existsSync(perfData)) throw new Error(`perf record failed (exit ${String(done.exitCode)}): ${String(done.all).slice(-500)}`);
    }
    if (gcLog) {
      const text = fs.readFileSync(gcLog, 'latin1').slice(gcFrom);
      gcReport = formatGcSummary(summariseGcTrace(text), r.requests);
    }
    process.stdout.write(`${o.scenario}: ${Math.round(r.rps)} req/s, p50 ${r.p50_ms} ms, p99 ${r.p99_ms} ms, errors ${r.errors} (profiled: slower than usual)\n`);
  } finally {
    await mosn.stop();
    backend.proc.kill('SIGTERM');
  }
  if (perf) await perfReport(perf, perfData, workerPids, o.top);
  else if (o.gc) process.stdout.write(`\n${gcReport}\n`);
  else await cpuprofileReport(profDir, o.workers, o.top);
  if (o.keep) process.stdout.write(`\nprofiles kept in ${profDir}\n`);
  else fs.rmSync(dir, { recursive: true, force: true });
}

async function cpuprofileReport(profDir: string, workers: number, top: number): Promise<void> {
  // Workers write their profiles as they exit.
  const deadline = Date.now() + 10_000;
  let files: string[] = [];
  while (Date.now() < deadline) {
    files = fs.readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
    if (files.length >= workers) break;
    await sleep(200);
  }
  if (files.length === 0) throw new Error(`no profile was written to ${profDir}`);
  for (const f of files.sort()) {
    const file = path.join(profDir, f);
    process.stdout.write(`\n== ${f}\n`);
    for (const script of ['cpuprofile-by-area.mjs', 'cpuprofile-top.mjs']) {
      const r = await execa(process.execPath, [path.join(ROOT, 'scripts', script), file, String(top)], { reject: false });
      process.stdout.write(`${String(r.stdout)}\n${r.exitCode === 0 ? '' : String(r.stderr)}`);
    }
  }
}

/** All workers' samples together, by area, then the top symbols. */
async function perfReport(perf: string, data: string, workerPids: number[], top: number): Promise<void> {
  try {
    const report = await execa(perf, ['report', '-i', data, '--stdio', '--no-children', '-g', 'none', '--sort', 'dso,sym'], { reject: false, maxBuffer: 256 * 1024 * 1024 });
    if (report.exitCode !== 0) throw new Error(`perf report failed: ${String(report.stderr).slice(-500)}`);
    const byArea = await execa(process.execPath, [path.join(ROOT, 'scripts', 'perf-by-area.mjs'), String(top)], { input: String(report.stdout), reject: false });
    process.stdout.write(`\n== perf, workers ${workerPids.join(', ')} (share of their samples)\n${String(byArea.stdout)}\n${byArea.exitCode === 0 ? '' : String(byArea.stderr)}`);
  } finally {
    // --perf-basic-prof's symbol maps (/tmp/perf-PID.map) grow with every compiled function.
    for (const pid of workerPids) fs.rmSync(`/tmp/perf-${pid}.map`, { force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:profile: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
