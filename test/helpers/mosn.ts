// Starts a real mosn supervisor (dist/cli/mosn.js) on a temp config with
// port-0 listeners and a private control socket, and waits until it runs.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import YAML from 'yaml';
import { controlRequest } from '../../src/common/control.js';
import { isAlive, waitFor } from './wait.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const MOSN = path.join(ROOT, 'dist/cli/mosn.js');
export const MOSNCTL = path.join(ROOT, 'dist/cli/mosnctl.js');

export interface StatusListener {
  name: string;
  protocol: string;
  address: string;
  port: number;
}

export interface Status {
  pid: number;
  phase: string;
  generation: number | null;
  admin: { address: string; port: number } | null;
  listeners: StatusListener[];
  generations: { id: number; state: string; workers: { slot: number; pid: number; phase: string; connections: Record<string, number> }[] }[];
  connections: Record<string, number>;
  [k: string]: unknown;
}

export interface MosnOptions {
  /** Extra environment for the supervisor. */
  env?: Record<string, string>;
  /** Wait for phase running (default true). */
  waitReady?: boolean;
  readyTimeoutMs?: number;
  /** Use this dir instead of a fresh temp dir. */
  dir?: string;
  /** Node binary to run mosn with (default: the one running the tests). */
  node?: string;
}

export type MosnSubprocess = ResultPromise<{ reject: false; buffer: false; stdin: 'ignore'; env: Record<string, string>; extendEnv: false }>;

export class MosnProcess {
  readonly lines: string[] = [];
  status!: Status;

  constructor(
    readonly proc: MosnSubprocess,
    readonly dir: string,
    readonly configFile: string,
    readonly socket: string,
  ) {
    const collect = (stream: NodeJS.ReadableStream | null): void => {
      let buf = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          this.lines.push(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
        }
      });
    };
    collect(proc.stdout);
    collect(proc.stderr);
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  /** JSON log records (non-JSON lines skipped). */
  logs(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const l of this.lines) {
      if (!l.startsWith('{')) continue;
      try {
        out.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        // partial line
      }
    }
    return out;
  }

  accessLogs(): Record<string, unknown>[] {
    return this.logs().filter((l) => l['log'] === 'access');
  }

  /**
   * The first access log line for a request path (or matching `match`), once
   * written: lines are written after the response has left, so a client can
   * see its response first.
   */
  async accessLine(match: string | ((l: Record<string, unknown>) => boolean), what?: string): Promise<Record<string, unknown>> {
    const pred = typeof match === 'string' ? (l: Record<string, unknown>) => l['path'] === match : match;
    let line: Record<string, unknown> | undefined;
    await waitFor(() => (line = this.accessLogs().find(pred)) !== undefined, { timeoutMs: 5000, what: what ?? `the access log line of ${String(match)}` });
    return line!;
  }

  port(listener: string): number {
    const l = this.status.listeners.find((x) => x.name === listener);
    if (!l) throw new Error(`no listener ${listener} in status`);
    return l.port;
  }

  get adminPort(): number {
    if (!this.status.admin) throw new Error('no admin address in status');
    return this.status.admin.port;
  }

  async refresh(): Promise<Status> {
    const r = await controlRequest(this.socket, { command: 'status' }, { timeoutMs: 5000 });
    if (!r.ok) throw new Error(`status failed: ${r.error.message}`);
    this.status = r.result as Status;
    return this.status;
  }

  workerPids(): number[] {
    return this.status.generations.flatMap((g) => g.workers.map((w) => w.pid));
  }

  async ctl(...args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
    const r = await execa(process.execPath, [MOSNCTL, '--socket', this.socket, ...args], { reject: false, env: childEnv(), extendEnv: false });
    return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
  }

  /** Resolves with the exit code once the supervisor exits. */
  async exited(timeoutMs = 60_000): Promise<{ code: number | null; signal: string | null }> {
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    const r = await this.proc;
    clearTimeout(timer);
    return { code: r.exitCode ?? null, signal: r.signal ?? null };
  }

  /**
   * Stops it (fast), making sure nothing lingers; for teardown. After an
   * upgrade the supervisor is another process (the successor), found
   * through the control socket.
   */
  async kill(): Promise<void> {
    await this.refresh().catch(() => undefined);
    const supervisors = new Set<number>([this.pid]);
    if (this.status) supervisors.add(this.status.pid);
    const workers = this.status ? this.workerPids() : [];
    const signal = (pids: Iterable<number>, sig: NodeJS.Signals): void => {
      for (const p of pids) {
        try {
          process.kill(p, sig);
        } catch {
          // gone
        }
      }
    };
    signal(supervisors, 'SIGINT');
    const deadline = Date.now() + 5000;
    while ([...supervisors].some(isAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    signal([...supervisors, ...workers], 'SIGKILL');
    if (this.proc.exitCode === null && this.proc.signalCode === null) await this.proc;
  }
}

/**
 * The environment for processes under test: the test runner's own loader
 * hooks (NODE_OPTIONS) must not leak into mosn, which runs as in production.
 */
export function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'NODE_OPTIONS') env[k] = v;
  return { ...env, ...extra };
}

const tempDirs: string[] = [];

/**
 * A fresh directory under the system temp dir, removed when the test
 * process exits (kept with MOSN_TEST_KEEP_TMP=1, to look at after a failure).
 */
export function tempDir(prefix = 'mosn-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  if (tempDirs.push(dir) === 1) {
    process.on('exit', () => {
      if (process.env['MOSN_TEST_KEEP_TMP'] === '1') return;
      for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
    });
  }
  return dir;
}

/** Fills in what every test config needs: control socket, admin on port 0. */
export function testConfig(cfg: Record<string, unknown>, dir: string): Record<string, unknown> {
  return {
    workers: 2,
    control_socket: path.join(dir, 'mosn.sock'),
    admin: { address: '127.0.0.1:0' },
    log: { level: 'info', access_log: 'stdout' },
    ...cfg,
  };
}

export function writeConfig(cfg: Record<string, unknown>, dir: string, name = 'mosn.yaml'): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, YAML.stringify(cfg));
  return file;
}

export async function startMosn(cfg: Record<string, unknown>, opts: MosnOptions = {}): Promise<MosnProcess> {
  const dir = opts.dir ?? tempDir();
  const full = testConfig(cfg, dir);
  const file = writeConfig(full, dir);
  const proc = execa(opts.node ?? process.execPath, [MOSN, 'start', '-c', file], {
    reject: false,
    buffer: false,
    env: childEnv(opts.env),
    extendEnv: false,
    stdin: 'ignore',
  });
  const m = new MosnProcess(proc, dir, file, String(full['control_socket']));
  if (opts.waitReady === false) return m;
  let exited = false;
  void proc.then(() => (exited = true));
  await waitFor(
    async () => {
      if (exited) throw new Error(`mosn exited during start:\n${m.lines.join('\n')}`);
      const s = await m.refresh().catch(() => undefined);
      return s?.phase === 'running';
    },
    { timeoutMs: opts.readyTimeoutMs ?? 20_000, what: 'mosn to reach phase running' },
  );
  return m;
}
