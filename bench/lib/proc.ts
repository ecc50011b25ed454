// Process and socket helpers for the bench scripts (Linux /proc).
import fs from 'node:fs';
import net from 'node:net';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** VmRSS of a process in bytes (0 if it is gone). */
export function rssBytes(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * The fields of /proc/PID/stat after "pid (comm) ": [0] state, [1] ppid, ...,
 * [7] minflt, [11] utime, [12] stime. comm may contain spaces and parentheses. Undefined
 * when the process is gone.
 */
function statFields(pid: number | string): string[] | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** What the processes have used so far (gone processes count 0): one read of each /proc/PID/stat. */
export interface ProcCounters {
  /** CPU time in user space, ms (USER_HZ = 100 on Linux). */
  userMs: number;
  /** CPU time in the kernel (syscalls, and the softirq work run inside them), ms. */
  systemMs: number;
  minorFaults: number;
}

export function procCounters(pids: readonly number[]): ProcCounters {
  let user = 0;
  let system = 0;
  let minorFaults = 0;
  for (const pid of pids) {
    const f = statFields(pid);
    if (!f) continue;
    minorFaults += Number(f[7]);
    user += Number(f[11]);
    system += Number(f[12]);
  }
  return { userMs: user * 10, systemMs: system * 10, minorFaults };
}

/** Per request between two readings: CPU µs (all), of it the kernel's, and minor page faults. NaN without requests. */
export function perRequest(before: ProcCounters, after: ProcCounters, requests: number): { cpuUs: number; sysUs: number; faults: number } {
  if (!(requests > 0)) return { cpuUs: NaN, sysUs: NaN, faults: NaN };
  const sysMs = after.systemMs - before.systemMs;
  return {
    cpuUs: ((after.userMs - before.userMs + sysMs) * 1000) / requests,
    sysUs: (sysMs * 1000) / requests,
    faults: (after.minorFaults - before.minorFaults) / requests,
  };
}

/** Pids whose parent is `ppid`. */
export function childPids(ppid: number): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (/^\d+$/.test(e) && Number(statFields(e)?.[1]) === ppid) out.push(Number(e));
  }
  return out;
}

/** A port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Resolves once something accepts on the port; rejects after timeoutMs. */
export async function waitForPort(port: number, timeoutMs: number, alive: () => boolean = () => true): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.on('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (!alive()) throw new Error(`the process meant to listen on port ${port} exited`);
    if (Date.now() > deadline) throw new Error(`nothing listens on port ${port} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** GET http://127.0.0.1:port/path once; the status code (0 on error). */
export function httpStatus(port: number, path = '/'): Promise<number> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    s.setEncoding('latin1');
    s.on('connect', () => s.write(`GET ${path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n`));
    s.on('data', (d: string) => (buf += d));
    s.on('close', () => resolve(Number(/^HTTP\/1\.\d (\d{3})/.exec(buf)?.[1] ?? 0)));
    s.on('error', () => undefined);
    s.setTimeout(5000, () => s.destroy());
  });
}
