// wrk (https://github.com/wg/wrk, Debian package "wrk") as the HTTP load tool
// of bench:compare: runs it and parses its --latency report.
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import type { HttpJob, HttpResult } from './agent.js';

/** The same request shape as the Node load agent's, plus wrk's thread count. */
export interface WrkJob extends Pick<HttpJob, 'port' | 'path' | 'method' | 'bodyBytes' | 'close' | 'connections' | 'durationMs'> {
  threads: number;
}

/** A Lua script for the request shape (1 MiB POST, Connection: close), or undefined for a plain GET. */
export function wrkScript(dir: string, job: Pick<WrkJob, 'method' | 'bodyBytes' | 'close'>): string | undefined {
  if (job.method === 'GET' && !job.close) return undefined;
  const lines = [`wrk.method = "${job.method}"`];
  if (job.bodyBytes > 0) {
    lines.push(`wrk.body = string.rep("z", ${job.bodyBytes})`);
    lines.push('wrk.headers["Content-Type"] = "application/octet-stream"');
  }
  // wrk reconnects after a response carrying Connection: close.
  if (job.close) lines.push('wrk.headers["Connection"] = "close"');
  const file = path.join(dir, `wrk-${job.method}-${job.bodyBytes}-${job.close ? 'close' : 'ka'}.lua`);
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function toMs(v: string, unit: string): number {
  return Number(v) * (UNIT_MS[unit] ?? NaN);
}

/** Parses wrk's output (with --latency). Throws if it has no Requests/sec line. */
export function parseWrk(out: string): HttpResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  if (!rps) throw new Error(`unexpected wrk output:\n${out}`);
  const pct = (p: string): number => {
    const m = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, 'm').exec(out);
    return m ? toMs(m[1]!, m[2]!) : NaN;
  };
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m|h)/.exec(out);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  return {
    requests: total ? Number(total[1]) : NaN,
    seconds: total ? toMs(total[2]!, total[3]!) / 1000 : NaN,
    rps: Number(rps[1]),
    p50_ms: pct('50'),
    p99_ms: pct('99'),
    errors: sock ? sock.slice(1, 5).reduce((a, b) => a + Number(b), 0) : 0,
    non2xx: non2xx ? Number(non2xx[1]) : 0,
  };
}

export async function runWrk(wrk: string, dir: string, job: WrkJob): Promise<HttpResult> {
  const script = wrkScript(dir, job);
  const threads = Math.max(1, Math.min(job.threads, job.connections));
  const seconds = Math.max(1, Math.round(job.durationMs / 1000));
  const args = [`-t${threads}`, `-c${job.connections}`, `-d${seconds}s`, '--latency', ...(script ? ['-s', script] : []), `http://127.0.0.1:${job.port}${job.path}`];
  const r = await execa(wrk, args, { reject: false, timeout: job.durationMs + 60_000 });
  if (r.exitCode !== 0 && !/Requests\/sec/.test(String(r.stdout))) {
    throw new Error(`wrk ${args.join(' ')} exited ${r.exitCode}: ${String(r.stderr)}${String(r.stdout)}`);
  }
  return parseWrk(String(r.stdout));
}
