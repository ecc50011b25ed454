// What the reload/upgrade tests share: mosnctl's status as a user sees it,
// and a load whose every answer must come from the backend tagged "a".
import { startLoad, type Load } from './load.js';
import type { MosnProcess } from './mosn.js';

export interface CtlStatus {
  pid: number;
  generation: number;
  generations: { id: number; state: string; workers: { pid: number }[] }[];
  migrated: { http: number; tcp: number; tunnel: number };
  draining_generations: number;
  reload_in_progress: string | null;
  last_reload: { kind: string; ok: boolean; duration_ms: number; generation?: number; error?: { code: string; message: string } } | null;
}

/** `mosnctl status --json`, through the CLI. */
export async function ctlStatus(m: MosnProcess): Promise<CtlStatus> {
  const r = await m.ctl('status', '--json');
  if (r.exitCode !== 0) throw new Error(`mosnctl status failed (${r.exitCode}): ${r.stderr}`);
  return JSON.parse(r.stdout) as CtlStatus;
}

/** Every worker pid, sorted. */
export function pidsOf(s: CtlStatus): number[] {
  return s.generations.flatMap((g) => g.workers.map((w) => w.pid)).sort((a, b) => a - b);
}

/** Backend answers carry its tag: anything else is a failure the load must count. */
export function loadFor(m: MosnProcess): Load {
  return startLoad({
    port: m.port('web'),
    path: '/load',
    check: (_s, body) => {
      try {
        return (JSON.parse(body) as { tag?: string }).tag === 'a' ? undefined : 'wrong backend';
      } catch {
        return 'not the backend JSON';
      }
    },
  });
}
