// npm run bench:ab -- --variant ROOT[+NAME=VALUE...] --variant ... [--scenario
//   keepalive|chunked|large|upload|newconn] [--rounds N] [--duration S]
//   [--connections C] [--workers N] [--json]
//
// A/B of mosn-ts builds or settings on one load: each --variant is a mosn-ts
// instance, started from the checkout ROOT (its dist/ as built) with the
// environment additions after each "+" (e.g. `.+MALLOC_TRIM_THRESHOLD_=131072`
// or `.+MOSN_WORKER_NODE_ARGS=--max-semi-space-size=16`). All variants run at
// once against the same backend and take turns under wrk (A B A B ...,
// --rounds rounds of --duration seconds each): on a noisy 2-core VM, only
// alternating runs compare. Per variant and round it reads, from /proc, the
// CPU time and the minor page faults of every mosn-ts process, and prints
// req/s, p99, CPU µs per request and page faults per request, then the
// medians. Page faults per request is what found the glibc heap trimming of
// the fourth pass (bench/RESULTS.md).
//
// Not a timed test; the numbers only compare within one run.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readOptions, usage } from './lib/args.js';
import { ensureTools } from './lib/install.js';
import { perRequest, procCounters, sleep } from './lib/proc.js';
import { HTTP_SCENARIOS, HTTP_SHAPES, type HttpScenario } from './lib/shapes.js';
import { median } from './lib/stats.js';
import { startBackend, startMosn, type Target } from './lib/targets.js';
import { runWrk } from './lib/wrk.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

interface Variant {
  label: string;
  root: string;
  env: Record<string, string>;
}

function variant(spec: string): Variant {
  const [root, ...assignments] = spec.split('+');
  if (!root) usage('ab', `--variant ${spec}: a checkout directory comes first`);
  const env: Record<string, string> = {};
  for (const a of assignments) {
    const eq = a.indexOf('=');
    if (eq < 1) usage('ab', `--variant ${spec}: "${a}" is not NAME=VALUE`);
    env[a.slice(0, eq)] = a.slice(eq + 1);
  }
  const abs = path.resolve(root);
  if (!fs.existsSync(path.join(abs, 'dist/cli/mosn.js'))) usage('ab', `--variant ${spec}: ${abs}/dist/cli/mosn.js is missing (run npm run build there)`);
  return { label: spec, root: abs, env };
}

function parse(argv: string[]) {
  const o = { variants: [] as Variant[], scenario: 'keepalive' as HttpScenario, rounds: 4, durationS: 8, connections: 64, workers: os.availableParallelism(), json: false };
  readOptions('ab', argv, (flag, r) => {
    switch (flag) {
      case '--variant': o.variants.push(variant(r.value())); break;
      case '--scenario': o.scenario = r.choice([...HTTP_SCENARIOS]); break;
      case '--rounds': o.rounds = r.whole(); break;
      case '--duration': o.durationS = r.whole(); break;
      case '--connections': o.connections = r.whole(); break;
      case '--workers': o.workers = r.whole(); break;
      case '--json': o.json = true; break;
      default: return false;
    }
    return true;
  });
  if (o.variants.length < 2) usage('ab', 'give at least two --variant (the same checkout twice is fine, with different settings)');
  return o;
}

interface Sample {
  rps: number;
  p99_ms: number;
  cpu_us_per_req: number;
  /** The kernel's part of cpu_us_per_req. */
  sys_us_per_req: number;
  faults_per_req: number;
  errors: number;
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  const log = (m: string): boolean => process.stderr.write(`bench:ab: ${m}\n`);
  const tools = await ensureTools({ nginx: false, nginxStream: false, haproxy: false, wrk: true }, true, log);
  if (!tools.wrk) throw new Error('wrk is needed (apt-get install wrk)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mosn-ab-'));
  const backend = await startBackend(ROOT, o.workers);
  const targets: Target[] = [];
  const samples = new Map<Variant, Sample[]>(o.variants.map((v) => [v, []]));
  try {
    for (const [i, v] of o.variants.entries()) {
      const vdir = path.join(dir, String(i));
      fs.mkdirSync(vdir);
      targets.push(await startMosn(v.root, { dir: vdir, workers: o.workers, backend, maxConnections: o.connections * 2, httpConnections: o.connections, mosnEnv: v.env }));
    }
    const shape = HTTP_SHAPES[o.scenario];
    const job = { ...shape, connections: o.connections, threads: 2 };
    for (const t of targets) await runWrk(tools.wrk, dir, { ...job, port: t.http, durationMs: 2000 }); // warm-up
    for (let round = 1; round <= o.rounds; round++) {
      for (const [i, v] of o.variants.entries()) {
        const t = targets[i]!;
        const pids = await t.allPids();
        const before = procCounters(pids);
        const r = await runWrk(tools.wrk, dir, { ...job, port: t.http, durationMs: o.durationS * 1000 });
        const used = perRequest(before, procCounters(pids), r.requests);
        const s: Sample = {
          rps: r.rps,
          p99_ms: r.p99_ms,
          cpu_us_per_req: used.cpuUs,
          sys_us_per_req: used.sysUs,
          faults_per_req: used.faults,
          errors: r.errors + r.non2xx,
        };
        samples.get(v)!.push(s);
        if (!o.json) {
          process.stdout.write(
            `round ${round}/${o.rounds} ${v.label}: ${Math.round(s.rps)} req/s, p99 ${s.p99_ms.toFixed(2)} ms, ${s.cpu_us_per_req.toFixed(1)} CPU µs/req (kernel ${s.sys_us_per_req.toFixed(1)}), ${s.faults_per_req.toFixed(2)} faults/req, ${s.errors} errors\n`,
          );
        }
        await sleep(300);
      }
    }
  } finally {
    for (const t of targets) await t.stop().catch(() => undefined);
    backend.proc.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const summary = o.variants.map((v) => {
    const ss = samples.get(v)!;
    const med = (k: keyof Sample): number => median(ss.map((s) => s[k]));
    return { variant: v.label, rps: med('rps'), p99_ms: med('p99_ms'), cpu_us_per_req: med('cpu_us_per_req'), sys_us_per_req: med('sys_us_per_req'), faults_per_req: med('faults_per_req'), errors: ss.reduce((n, s) => n + s.errors, 0) };
  });
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ scenario: o.scenario, rounds: o.rounds, duration_s: o.durationS, connections: o.connections, workers: o.workers, variants: summary }, null, 2)}\n`);
    return;
  }
  process.stdout.write(`\n${HTTP_SHAPES[o.scenario].title}: medians of ${o.rounds} alternating rounds of ${o.durationS} s, ${o.connections} connections, ${o.workers} workers\n`);
  for (const s of summary) {
    process.stdout.write(`${s.variant}: ${Math.round(s.rps)} req/s, p99 ${s.p99_ms.toFixed(2)} ms, ${s.cpu_us_per_req.toFixed(1)} CPU µs/req (kernel ${s.sys_us_per_req.toFixed(1)}), ${s.faults_per_req.toFixed(2)} faults/req, ${s.errors} errors\n`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:ab: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
