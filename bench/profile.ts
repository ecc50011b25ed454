// npm run bench:profile -- [--scenario keepalive|large|upload|newconn]
//   [--duration S] [--connections C] [--workers N] [--top N] [--keep]
//
// CPU-profiles mosn-ts's workers under one wrk load (the same backend, config
// and request shapes as bench:compare), then prints where their time went:
// self time by area (scripts/cpuprofile-by-area.mjs) and the top functions
// (scripts/cpuprofile-top.mjs), per worker. The profiles stay in the printed
// directory with --keep (open them in Chrome DevTools or speedscope).
// Profiling slows the workers down: read shares, not req/s.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { readOptions } from './lib/args.js';
import { HTTP_SCENARIOS, HTTP_SHAPES, type HttpScenario } from './lib/shapes.js';
import { ensureTools } from './lib/install.js';
import { sleep } from './lib/proc.js';
import { startBackend, startMosn } from './lib/targets.js';
import { runWrk } from './lib/wrk.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function parse(argv: string[]) {
  const o = { scenario: 'keepalive' as HttpScenario, durationS: 10, connections: 64, workers: os.availableParallelism(), top: 25, keep: false };
  readOptions('profile', argv, (flag, r) => {
    switch (flag) {
      case '--scenario': o.scenario = r.choice([...HTTP_SCENARIOS]); break;
      case '--duration': o.durationS = r.whole(); break;
      case '--connections': o.connections = r.whole(); break;
      case '--workers': o.workers = r.whole(); break;
      case '--top': o.top = r.whole(); break;
      case '--keep': o.keep = true; break;
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
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mosn-profile-'));
  const profDir = path.join(dir, 'profiles');
  fs.mkdirSync(profDir);
  const backend = await startBackend(ROOT, o.workers);
  const mosn = await startMosn(ROOT, {
    dir,
    workers: o.workers,
    backend,
    maxConnections: o.connections * 2,
    httpConnections: o.connections,
    mosnEnv: { MOSN_WORKER_NODE_ARGS: `--cpu-prof --cpu-prof-dir=${profDir}` },
  });
  try {
    const shape = HTTP_SHAPES[o.scenario];
    const job = { ...shape, port: mosn.http, connections: o.connections, threads: 2 };
    await runWrk(tools.wrk, dir, { ...job, durationMs: 2000 }); // warm-up
    const r = await runWrk(tools.wrk, dir, { ...job, durationMs: o.durationS * 1000 });
    process.stdout.write(`${o.scenario}: ${Math.round(r.rps)} req/s, p50 ${r.p50_ms} ms, p99 ${r.p99_ms} ms, errors ${r.errors} (profiled: slower than usual)\n`);
  } finally {
    await mosn.stop();
    backend.proc.kill('SIGTERM');
  }
  // Workers write their profiles as they exit.
  const deadline = Date.now() + 10_000;
  let files: string[] = [];
  while (Date.now() < deadline) {
    files = fs.readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
    if (files.length >= o.workers) break;
    await sleep(200);
  }
  if (files.length === 0) throw new Error(`no profile was written to ${profDir}`);
  for (const f of files.sort()) {
    const file = path.join(profDir, f);
    process.stdout.write(`\n== ${f}\n`);
    for (const script of ['cpuprofile-by-area.mjs', 'cpuprofile-top.mjs']) {
      const r = await execa(process.execPath, [path.join(ROOT, 'scripts', script), file, String(o.top)], { reject: false });
      process.stdout.write(`${String(r.stdout)}\n${r.exitCode === 0 ? '' : String(r.stderr)}`);
    }
  }
  if (o.keep) process.stdout.write(`\nprofiles kept in ${profDir}\n`);
  else fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:profile: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
