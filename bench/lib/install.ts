// Finds (and, when missing, installs with apt-get) the peers and the load
// tool of bench:compare: nginx with its stream module, HAProxy, wrk.
// Installing never starts a system service: a policy-rc.d that refuses is
// put in place for the install when the machine has none.
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';

export type Log = (msg: string) => void;

export interface Tools {
  nginx?: string;
  /** 'static' (built in), a module file to load_module, or undefined (no TCP for nginx). */
  nginxStream?: string;
  haproxy?: string;
  wrk?: string;
  versions: Record<string, string>;
  warnings: string[];
}

const SBIN = ['/usr/sbin', '/usr/local/sbin', '/sbin', '/usr/bin', '/usr/local/bin', '/bin'];

/** The path of a command: `command -v`, then the usual sbin/bin directories. */
export async function which(cmd: string): Promise<string | undefined> {
  const r = await execa('sh', ['-c', `command -v ${cmd}`], { reject: false });
  const p = String(r.stdout).trim();
  if (r.exitCode === 0 && p.startsWith('/')) return p;
  for (const d of SBIN) {
    const f = path.join(d, cmd);
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return f;
    } catch {
      // not here
    }
  }
  return undefined;
}

let aptUpdated = false;

/** apt-get install -y PKGS; false (with the reason logged) if it fails. */
async function aptInstall(pkgs: string[], log: Log): Promise<boolean> {
  if (process.getuid?.() !== 0) {
    log(`cannot install ${pkgs.join(' ')}: apt-get needs root (run as root, or install them first)`);
    return false;
  }
  if (!(await which('apt-get'))) {
    log(`cannot install ${pkgs.join(' ')}: no apt-get on this machine`);
    return false;
  }
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  const policy = '/usr/sbin/policy-rc.d';
  let ownPolicy = false;
  try {
    if (!fs.existsSync(policy)) {
      // Packages must not start nginx/haproxy as system services on port 80.
      fs.writeFileSync(policy, '#!/bin/sh\n# bench:compare: no service starts during its apt-get install\nexit 101\n', { mode: 0o755 });
      ownPolicy = true;
    }
    if (!aptUpdated) {
      log('bench:compare: apt-get update (once) ...');
      const u = await execa('apt-get', ['update'], { reject: false, env });
      aptUpdated = true;
      if (u.exitCode !== 0) log(`apt-get update failed (${u.exitCode}): ${String(u.stderr).trim().split('\n').slice(-3).join(' | ')}`);
    }
    log(`bench:compare: apt-get install -y ${pkgs.join(' ')} ...`);
    const r = await execa('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], { reject: false, env });
    if (r.exitCode !== 0) {
      log(`apt-get install ${pkgs.join(' ')} failed (${r.exitCode}): ${String(r.stderr).trim().split('\n').slice(-3).join(' | ')}`);
      return false;
    }
    return true;
  } finally {
    if (ownPolicy) fs.rmSync(policy, { force: true });
  }
}

/** The first line a command prints about its version (stdout or stderr). */
async function versionOf(bin: string, args: string[]): Promise<string> {
  const r = await execa(bin, args, { reject: false, all: true });
  return String(r.all ?? '').trim().split('\n')[0] ?? '?';
}

/** How nginx gets the stream module: 'static', a .so to load, or undefined. */
async function nginxStream(nginx: string): Promise<string | undefined> {
  const r = await execa(nginx, ['-V'], { reject: false, all: true });
  const v = String(r.all ?? '');
  if (/--with-stream(\s|$)/.test(v)) return 'static';
  const dirs = [/--modules-path=(\S+)/.exec(v)?.[1], '/usr/lib/nginx/modules', '/usr/share/nginx/modules'].filter((d): d is string => !!d);
  for (const d of dirs) {
    const f = path.join(d, 'ngx_stream_module.so');
    if (fs.existsSync(f)) return f;
  }
  return undefined;
}

export interface Want {
  nginx: boolean;
  /** nginx's TCP (stream) scenarios are wanted too. */
  nginxStream: boolean;
  haproxy: boolean;
  wrk: boolean;
}

export async function ensureTools(want: Want, allowInstall: boolean, log: Log): Promise<Tools> {
  const tools: Tools = { versions: {}, warnings: [] };
  const warn = (m: string): void => {
    tools.warnings.push(m);
    log(`WARNING: ${m}`);
  };
  const missing: string[] = [];
  if (want.nginx && !(await which('nginx'))) missing.push('nginx');
  if (want.haproxy && !(await which('haproxy'))) missing.push('haproxy');
  if (want.wrk && !(await which('wrk'))) missing.push('wrk');
  if (missing.length > 0) {
    if (!allowInstall) log(`bench:compare: not installed: ${missing.join(', ')} (--no-install: not installing)`);
    else {
      log(`bench:compare: not installed: ${missing.join(', ')}; installing with apt-get`);
      // Debian: "nginx" is the binary package (nginx-light on older releases).
      const pkgs = missing;
      if (!(await aptInstall(pkgs, log))) {
        // One by one, so one failure does not cost the others.
        for (const p of pkgs) {
          if (p === 'nginx' && !(await aptInstall(['nginx'], log))) await aptInstall(['nginx-light'], log);
          else if (p !== 'nginx') await aptInstall([p], log);
        }
      }
    }
  }
  if (want.nginx) {
    tools.nginx = await which('nginx');
    if (!tools.nginx) warn('nginx is not installed: skipping the nginx target');
    else {
      tools.versions['nginx'] = (await versionOf(tools.nginx, ['-v'])).replace(/^nginx version:\s*(nginx\/)?/, '');
      if (want.nginxStream) {
        tools.nginxStream = await nginxStream(tools.nginx);
        if (!tools.nginxStream && allowInstall) {
          log('bench:compare: nginx has no stream module; installing libnginx-mod-stream');
          if (!(await aptInstall(['libnginx-mod-stream'], log))) await aptInstall(['nginx-full'], log);
          tools.nginxStream = await nginxStream(tools.nginx);
        }
        if (!tools.nginxStream) warn('nginx has no stream module (install libnginx-mod-stream): skipping nginx in the TCP scenarios');
      }
    }
  }
  if (want.haproxy) {
    tools.haproxy = await which('haproxy');
    if (!tools.haproxy) warn('haproxy is not installed: skipping the haproxy target');
    else tools.versions['haproxy'] = (await versionOf(tools.haproxy, ['-v'])).replace(/^HAProxy version\s*/, '').split(' ')[0]!;
  }
  if (want.wrk) {
    tools.wrk = await which('wrk');
    if (tools.wrk) tools.versions['wrk'] = (await versionOf(tools.wrk, ['-v'])).replace(/\s*Copyright.*$/, '').replace(/^wrk\s+/, '');
  }
  return tools;
}
