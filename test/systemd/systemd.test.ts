// mosn-ts under a real systemd (252): test/systemd/nssd.sh boots systemd as
// PID 1 of private namespaces on a throwaway overlay of / (never on the real
// root: see ../shared/NOTES-systemd.md), a release built by
// scripts/release.sh is bound at /opt/mosn/releases/<version>, and
// scripts/install.sh installs it inside. Then, with a keep-alive load running
// from the host (the network namespace is shared) that must see no error:
// start; `systemctl reload` (new generation); a reload with a bad config
// (fails, nothing changes); `mosnctl upgrade` (MainPID moves to the successor
// supervisor, the unit stays active); stop (Result=success); and a start by
// socket activation through mosn-web.socket (the listener is adopted).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { execa, type Options } from 'execa';
import t from 'tap';
import { echoHandler, httpBackend, type Backend } from '../helpers/backends.js';
import { request } from '../helpers/http.js';
import { startLoad, totalFailures, type Load } from '../helpers/load.js';
import { ROOT, tempDir } from '../helpers/mosn.js';
import { waitFor } from '../helpers/wait.js';

const NSSD = path.join(ROOT, 'test/systemd/nssd.sh');
const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const REL = `/opt/mosn/releases/${VERSION}`;
const CONF = '/etc/mosn/mosn.yaml';

function skipReason(): string | false {
  if (process.platform !== 'linux') return 'needs Linux';
  if (process.getuid?.() !== 0) return 'needs root (it boots systemd in private namespaces)';
  if (!fs.existsSync('/lib/systemd/systemd')) return 'systemd is not installed';
  const r = spawnSync(NSSD, ['check'], { encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) return `cannot boot systemd in a namespace here: ${(r.stdout + r.stderr).trim() || `exit ${r.status}`}`;
  return false;
}

/** A port outside the ephemeral range (no client connection can hold it), free now. */
async function freePort(avoid: number[]): Promise<number> {
  const [low] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  const top = Math.min((low ?? 32768) - 1, 30999);
  for (let i = 0; i < 200; i++) {
    const port = 20000 + Math.floor(Math.random() * (top - 20000));
    if (avoid.includes(port)) continue;
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error('no free port');
}

/** Old entries of the host's /tmp (not ours, not about to change): they must survive. */
function stableTmpEntries(): string[] {
  const cutoff = Date.now() - 10 * 60_000;
  const out: string[] = [];
  for (const e of fs.readdirSync('/tmp')) {
    try {
      if (fs.lstatSync(path.join('/tmp', e)).mtimeMs < cutoff) out.push(e);
    } catch {
      // gone meanwhile
    }
    if (out.length >= 50) break;
  }
  return out;
}

function mountsUnder(dir: string): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m === dir || m.startsWith(dir + '/'));
}

interface StatusJson {
  pid: number;
  generation: number | null;
  listeners: { name: string; address: string; port: number }[];
  last_reload?: { kind: string; ok: boolean; error?: { code: string } } | null;
}

const skip = skipReason();

void t.test('mosn-ts as a systemd service: start, reload, bad reload, upgrade, stop, socket activation', { skip, timeout: 180_000 }, async (t) => {
  const t0 = Date.now();
  const timings: Record<string, number> = {};
  const lap = (name: string, since: number): void => {
    timings[name] = Date.now() - since;
  };
  const work = tempDir('mosn-systemd-');
  const state = path.join(work, 'ns');
  fs.mkdirSync(state);
  const sentinel = path.join(work, 'sentinel');
  fs.writeFileSync(sentinel, 'the host /tmp must keep this\n');
  const tmpBefore = stableTmpEntries();
  const tmpCountBefore = fs.readdirSync('/tmp').length;
  const passwdHadMosn = /^mosn:/m.test(fs.readFileSync('/etc/passwd', 'utf8'));
  const devLogBefore = fs.existsSync('/dev/log');
  const optMosnBefore = fs.existsSync('/opt/mosn');

  let pid1 = 0;
  let stopped = false;
  const stopNs = async (): Promise<{ exitCode?: number; stderr: string }> => {
    stopped = true;
    const r = await execa(NSSD, ['stop', state], { reject: false });
    return { exitCode: r.exitCode, stderr: String(r.stderr) };
  };
  // Safety net (a failed assertion or an exception below): the cleanup subtest normally did this.
  t.teardown(async () => {
    if (!stopped && fs.existsSync(path.join(state, 'init.pid'))) await stopNs();
  });

  /** Runs a command inside the namespace (root, its mount/pid/uts/ipc namespaces). */
  const ns = (args: string[], opts: Options = {}) => execa(NSSD, ['exec', state, ...args], { reject: false, timeout: 60_000, ...opts });
  const show = async (...props: string[]): Promise<Record<string, string>> => {
    const r = await ns(['systemctl', 'show', ...props.map((p) => `-p${p}`), 'mosn.service']);
    const out: Record<string, string> = {};
    for (const line of String(r.stdout).split('\n')) {
      const i = line.indexOf('=');
      if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
    }
    return out;
  };
  const status = async (): Promise<StatusJson> => {
    const r = await ns(['mosnctl', '-c', CONF, 'status', '--json']);
    if (r.exitCode !== 0) throw new Error(`mosnctl status: ${String(r.stderr)}`);
    return JSON.parse(String(r.stdout)) as StatusJson;
  };
  const journal = async (): Promise<string> => String((await ns(['journalctl', '--no-pager', '-o', 'cat', '-u', 'mosn.service', '-u', 'mosn-web.socket'])).stdout);

  let backend: Backend | undefined;
  let load: Load | undefined;

  await t.test('scenario', async (t) => {
    // 1. A release, as an operator builds it. release.sh must reuse the checkout's node_modules.
    let since = Date.now();
    const relDir = path.join(work, 'releases', VERSION);
    const lockFile = path.join(ROOT, 'node_modules/.package-lock.json');
    const lockBefore = fs.existsSync(lockFile) ? fs.statSync(lockFile).mtimeMs : undefined;
    const rel = await execa(path.join(ROOT, 'scripts/release.sh'), [relDir], { cwd: ROOT, reject: false, timeout: 120_000 });
    t.equal(rel.exitCode, 0, 'scripts/release.sh');
    if (rel.exitCode !== 0) {
      t.comment(String(rel.stderr).slice(-3000));
      return;
    }
    if (lockBefore !== undefined) t.equal(fs.statSync(lockFile).mtimeMs, lockBefore, 'release.sh left the checkout node_modules alone (no npm ci)');
    t.ok(fs.existsSync(path.join(relDir, 'node_modules/pino')), 'the release has its production node_modules');
    lap('release.sh', since);

    backend = await httpBackend(echoHandler('be'));
    const webPort = await freePort([backend.port]);
    const adminPort = await freePort([backend.port, webPort]);

    // 2. Boot systemd in its namespaces, with the release bound at its production path.
    since = Date.now();
    const start = await execa(NSSD, ['start', state, '--bind', `${relDir}:${REL}:ro`, '--owner', String(process.pid)], { reject: false, timeout: 60_000 });
    t.equal(start.exitCode, 0, `nssd.sh start: ${String(start.stderr)}`);
    if (start.exitCode !== 0) return;
    pid1 = Number(String(start.stdout).trim());
    t.ok(pid1 > 1, `systemd is PID 1 of the namespace, host pid ${pid1}`);
    lap('boot', since);

    // 3. Install: config first (install.sh validates it), then scripts/install.sh inside the overlay
    //    (the mosn user, /var/log/mosn, /opt/mosn/current, the units), then the socket unit's port.
    since = Date.now();
    const config = [
      'workers: 2',
      'control_socket: /run/mosn/mosn.sock',
      `admin: { address: "127.0.0.1:${adminPort}" }`,
      'upgrade: { ready_timeout: 10s, drain_timeout: 10s }',
      'log: { level: info, access_log: "off" }',
      'listeners:',
      '  - name: web',
      `    address: 127.0.0.1:${webPort}`,
      '    protocol: http',
      '    virtual_hosts:',
      '      - name: default',
      '        domains: ["*"]',
      '        routes:',
      '          - match: { prefix: / }',
      '            route: { cluster: app }',
      'clusters:',
      '  - name: app',
      `    endpoints: ["${backend.address}"]`,
      '',
    ].join('\n');
    const writeConfig = (text: string) => ns(['sh', '-c', `mkdir -p /etc/mosn && cat > ${CONF}.tmp && mv ${CONF}.tmp ${CONF}`], { input: text });
    t.equal((await writeConfig(config)).exitCode, 0, 'config written');
    const inst = await ns(['env', 'MOSN_UNIT_DIR=/run/nssd-units', `${REL}/scripts/install.sh`, REL]);
    t.equal(inst.exitCode, 0, 'scripts/install.sh inside the namespace');
    if (inst.exitCode !== 0) t.comment(`${String(inst.stdout)}\n${String(inst.stderr)}`);
    t.match(String((await ns(['getent', 'passwd', 'mosn'])).stdout), /^mosn:/, 'the mosn user exists inside the overlay');
    t.equal(String((await ns(['readlink', '/opt/mosn/current'])).stdout).trim(), REL, '/opt/mosn/current -> the release');
    const socketUnit = path.join(state, 'units/mosn-web.socket');
    const sockText = fs.readFileSync(socketUnit, 'utf8');
    t.match(sockText, /^ListenStream=/m);
    fs.writeFileSync(socketUnit, sockText.replace(/^ListenStream=.*$/m, `ListenStream=127.0.0.1:${webPort}`));
    t.equal((await ns(['systemctl', 'daemon-reload'])).exitCode, 0, 'daemon-reload');
    lap('install', since);

    // 4. systemctl start: active (Type=notify: READY=1 came), MainPID set, the proxy answers.
    since = Date.now();
    const st = await ns(['systemctl', 'start', 'mosn.service']);
    t.equal(st.exitCode, 0, 'systemctl start mosn');
    if (st.exitCode !== 0) {
      t.comment(`${String(st.stderr)}\n${await journal()}`);
      return;
    }
    lap('systemctl start', since);
    let p = await show('ActiveState', 'SubState', 'MainPID', 'StatusText');
    t.equal(p['ActiveState'], 'active');
    t.equal(p['SubState'], 'running');
    const firstMain = Number(p['MainPID']);
    t.ok(firstMain > 0, `MainPID ${firstMain}`);
    t.match(p['StatusText'] ?? '', /^generation 1, 2 workers/, 'STATUS= from the supervisor');
    const r0 = await request({ port: webPort, path: '/hello' });
    t.equal(r0.status, 200);
    t.match(r0.body, /"tag":"be"/, 'proxied to the backend');
    let s = await status();
    t.equal(s.pid, firstMain, 'the main PID is the supervisor');
    const gen1 = s.generation ?? 0;

    load = startLoad({ port: webPort, keepAlive: 3, fresh: 1, pauseMs: 5, check: (_st, body) => (body.includes('"tag":"be"') ? undefined : 'not from the backend') });
    await load.progress(30);

    // 5. systemctl reload: blocks until done, new generation, same main PID.
    since = Date.now();
    const rl = await ns(['systemctl', 'reload', 'mosn.service']);
    lap('systemctl reload', since);
    t.equal(rl.exitCode, 0, `systemctl reload: ${String(rl.stderr)}`);
    p = await show('ActiveState', 'MainPID');
    t.equal(p['ActiveState'], 'active');
    t.equal(Number(p['MainPID']), firstMain, 'same main PID after a reload');
    s = await status();
    t.equal(s.generation, gen1 + 1, `generation ${gen1} -> ${s.generation}`);
    t.equal(s.last_reload?.ok, true);
    await load.progress(30);

    // 6. A bad config: systemctl reload fails, the unit stays active, nothing changes.
    t.equal((await writeConfig(config + 'no_such_key: 1\n')).exitCode, 0);
    since = Date.now();
    const bad = await ns(['systemctl', 'reload', 'mosn.service']);
    lap('systemctl reload (bad config)', since);
    t.not(bad.exitCode, 0, 'systemctl reload fails on a bad config');
    const states: string[] = [];
    for (let i = 0; i < 5; i++) {
      const q = await show('ActiveState', 'SubState');
      states.push(`${q['ActiveState']}/${q['SubState']}`);
    }
    t.same([...new Set(states)], ['active/running'], `the unit stays active/running (${states.join(' ')})`);
    p = await show('MainPID', 'ReloadResult');
    t.equal(Number(p['MainPID']), firstMain, 'same main PID');
    s = await status();
    t.equal(s.generation, gen1 + 1, 'generation unchanged');
    t.equal(s.last_reload?.ok, false);
    t.equal(s.last_reload?.error?.code, 'MOSN_ERR_CONFIG_INVALID');
    t.equal((await writeConfig(config)).exitCode, 0, 'config restored');
    await load.progress(30);

    // 7. mosnctl upgrade (as root inside): the successor supervisor becomes the main PID.
    since = Date.now();
    const up = await ns(['mosnctl', '-c', CONF, 'upgrade', REL, '--json']);
    lap('mosnctl upgrade', since);
    t.equal(up.exitCode, 0, `mosnctl upgrade: ${String(up.stderr)}`);
    const upRes = JSON.parse(String(up.stdout) || '{}') as { supervisor?: { pid: number; previous_pid: number }; migrated?: number; generation?: number };
    const successor = upRes.supervisor?.pid ?? 0;
    t.equal(upRes.supervisor?.previous_pid, firstMain, 'handed over by the main PID');
    t.ok(successor > 0 && successor !== firstMain, `successor ${successor}`);
    await waitFor(async () => Number((await show('MainPID'))['MainPID']) === successor, { timeoutMs: 10_000, what: 'MainPID to name the successor' });
    t.pass('MainPID follows the successor');
    await waitFor(async () => (await ns(['kill', '-0', String(firstMain)])).exitCode !== 0, { timeoutMs: 15_000, what: 'the old supervisor to exit' });
    p = await show('ActiveState', 'SubState', 'MainPID', 'NRestarts');
    t.equal(p['ActiveState'], 'active', 'the unit stayed active');
    t.equal(p['SubState'], 'running');
    t.equal(p['NRestarts'], '0', 'systemd never restarted it');
    s = await status();
    t.equal(s.pid, successor, 'status comes from the successor');
    t.equal(s.generation, gen1 + 2);
    await load.progress(30);
    const counts = await load.stop();
    load = undefined;
    t.equal(totalFailures(counts), 0, `no request failed through reload, bad reload and upgrade (${counts.ok} ok, ${counts.connections} connections${counts.samples.length ? `: ${counts.samples.join('; ')}` : ''})`);
    t.ok(counts.ok > 100, `${counts.ok} requests served`);
    t.comment(`load: ${counts.ok} ok over ${counts.connections} connections; upgrade migrated ${upRes.migrated ?? '?'} connections`);

    // 8. systemctl stop: a clean stop of the successor (not systemd's original child).
    since = Date.now();
    const sp = await ns(['systemctl', 'stop', 'mosn.service']);
    lap('systemctl stop', since);
    t.equal(sp.exitCode, 0, `systemctl stop: ${String(sp.stderr)}`);
    p = await show('Result', 'ActiveState');
    t.equal(p['Result'], 'success', 'Result=success');
    t.equal(p['ActiveState'], 'inactive');
    const j1 = await journal();
    t.notMatch(j1, /not our child/, 'systemd supervised the successor as its own child');
    t.notMatch(j1, /SIGKILL|Killing process/, 'nothing had to be killed');

    // 9. Socket activation: systemd holds the port; the first connection starts the service,
    //    which adopts the listener instead of binding it.
    since = Date.now();
    const so = await ns(['systemctl', 'start', 'mosn-web.socket']);
    t.equal(so.exitCode, 0, `systemctl start mosn-web.socket: ${String(so.stderr)}`);
    t.equal(String((await ns(['systemctl', 'is-active', 'mosn.service'])).stdout).trim(), 'inactive', 'the service waits for a connection');
    const r1 = await request({ port: webPort, path: '/activated', timeoutMs: 15_000 });
    lap('socket activation (first request)', since);
    t.equal(r1.status, 200);
    t.match(r1.body, /"tag":"be"/, 'the activated service proxies');
    // Workers accept from the kernel's queue as soon as they serve, which is
    // just before the supervisor's READY=1 reaches systemd: "activating" for a moment.
    const answered = Date.now();
    await waitFor(async () => (await show('ActiveState'))['ActiveState'] === 'active', { timeoutMs: 10_000, what: 'the activated unit to be active' });
    lap('socket activation: answered -> active', answered);
    p = await show('ActiveState', 'SubState', 'MainPID', 'TriggeredBy');
    t.equal(p['SubState'], 'running', 'the activated unit is active/running');
    t.match(p['TriggeredBy'] ?? '', /mosn-web\.socket/);
    const actMain = Number(p['MainPID']);
    s = await status();
    t.equal(s.pid, actMain);
    const web = s.listeners.find((l) => l.name === 'web');
    t.equal(web?.port, webPort, 'listener "web" is on the socket unit\'s port');
    const adopted = (await ns(['journalctl', '--no-pager', '-o', 'cat', `_PID=${actMain}`])).stdout;
    t.match(String(adopted), new RegExp(`"listener":"web","fd":3,"address":"127.0.0.1","port":${webPort},"msg":"listener adopted from systemd"`), 'the supervisor adopted fd 3 from systemd');
    const sp2 = await ns(['systemctl', 'stop', 'mosn.service', 'mosn-web.socket']);
    t.equal(sp2.exitCode, 0);
    t.equal((await show('Result'))['Result'], 'success', 'Result=success after a socket-activated run too');
  });

  await t.test('cleanup: nothing left behind', async (t) => {
    if (load) await load.stop();
    await backend?.close();
    const cg = fs.existsSync(path.join(state, 'cgroup')) ? fs.readFileSync(path.join(state, 'cgroup'), 'utf8').trim() : '';
    const since = Date.now();
    const r = await stopNs();
    lap('nssd.sh stop', since);
    t.equal(r.exitCode, 0, `nssd.sh stop: ${r.stderr}`);
    if (pid1 > 0) t.notOk(fs.existsSync(`/proc/${pid1}`) && fs.readFileSync(`/proc/${pid1}/cmdline`, 'utf8').includes('systemd'), 'the namespace is gone');
    if (cg) t.notOk(fs.existsSync(cg), `its cgroup ${cg} is removed`);
    t.same(mountsUnder(work), [], 'no mount under the work dir on the host');
    t.same(mountsUnder('/opt/mosn'), [], 'no mount under /opt/mosn on the host');
    t.equal(fs.existsSync('/opt/mosn'), optMosnBefore, 'the host /opt/mosn is untouched');
    t.equal(/^mosn:/m.test(fs.readFileSync('/etc/passwd', 'utf8')), passwdHadMosn, 'the host /etc/passwd is untouched');
    t.equal(fs.existsSync('/dev/log'), devLogBefore, 'the host /dev/log is untouched');
    t.ok(fs.existsSync(sentinel), 'the host /tmp kept our sentinel');
    const missing = tmpBefore.filter((e) => !fs.existsSync(path.join('/tmp', e)));
    t.same(missing, [], `the host /tmp kept its old entries (${tmpBefore.length} checked)`);
    const tmpCountAfter = fs.readdirSync('/tmp').length;
    t.comment(`/tmp entries: ${tmpCountBefore} before, ${tmpCountAfter} after`);
    fs.rmSync(path.join(work, 'releases'), { recursive: true, force: true });
    fs.rmSync(sentinel, { force: true });
    // Kept for a post-mortem (boot.log, units) when the namespace could not be stopped cleanly.
    if (r.exitCode === 0 && mountsUnder(work).length === 0) fs.rmSync(work, { recursive: true, force: true });
    timings['total'] = Date.now() - t0;
    t.comment(`timings (ms): ${JSON.stringify(timings)}`);
  });
});
