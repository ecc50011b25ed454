// sd_notify messages as systemd would receive them, recorded by a test
// NOTIFY_SOCKET: READY at start, RELOADING (with MONOTONIC_USEC) then READY
// around a reload, MAINPID then READY from the successor on a handover,
// STOPPING on stop — in that order.
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { echoHandler, httpBackend } from '../helpers/backends.js';
import { ROOT, startMosn, tempDir } from '../helpers/mosn.js';
import { isAlive, waitFor } from '../helpers/wait.js';

interface Notice {
  pid: number | null;
  fields: Record<string, string>;
}

void t.test('sd_notify: READY, RELOADING/READY, MAINPID/READY on handover, STOPPING', async (t) => {
  const dir = tempDir('mosn-notify-');
  const sock = path.join(dir, 'notify.sock');
  const rx = execa('python3', [path.join(ROOT, 'test/helpers/notify-receiver.py'), sock], { buffer: false, reject: false });
  t.teardown(() => {
    rx.kill('SIGKILL');
  });
  const notices: Notice[] = [];
  let buf = '';
  rx.stdout?.setEncoding('utf8');
  rx.stdout?.on('data', (c: string) => {
    buf += c;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = JSON.parse(buf.slice(0, nl)) as Notice & { listening?: string };
      buf = buf.slice(nl + 1);
      if (!line.listening) notices.push(line);
    }
  });
  await waitFor(() => fs.existsSync(sock), { what: 'the notify socket' });

  const be = await httpBackend(echoHandler('be'));
  t.teardown(() => be.close());
  const m = await startMosn(
    {
      listeners: [{ name: 'web', address: '127.0.0.1:0', virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }] }],
      clusters: [{ name: 'app', endpoints: [be.address] }],
    },
    { env: { NOTIFY_SOCKET: sock } },
  );
  t.teardown(() => m.kill());
  const firstPid = m.status.pid;
  await waitFor(() => notices.some((n) => n.fields['READY'] === '1'), { what: 'READY=1' });
  t.match(notices[0]!.fields['STATUS'] ?? '', /^generation 1, 2 workers/, 'STATUS with the generation');

  const r1 = await m.ctl('reload');
  t.equal(r1.exitCode, 0, r1.stderr);
  await waitFor(() => notices.filter((n) => n.fields['READY'] === '1').length >= 2, { what: 'READY after the reload' });
  const reloading = notices.findIndex((n) => n.fields['RELOADING'] === '1');
  t.ok(reloading > 0, 'RELOADING=1 sent');
  const usec = BigInt(notices[reloading]!.fields['MONOTONIC_USEC'] ?? '0');
  const now = BigInt(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]!.replace('.', '')) * 10_000n;
  t.ok(usec > 0n && usec <= now + 1_000_000n, `MONOTONIC_USEC is CLOCK_MONOTONIC in µs (${usec})`);
  const readyAfter = notices.findIndex((n, i) => i > reloading && n.fields['READY'] === '1');
  t.ok(readyAfter > reloading, 'READY=1 after RELOADING=1');
  t.match(notices[readyAfter]!.fields['STATUS'] ?? '', /^generation 2/, 'STATUS shows the new generation');

  const r2 = await m.ctl('upgrade', '--json');
  t.equal(r2.exitCode, 0, r2.stderr);
  const newPid = (JSON.parse(r2.stdout) as { supervisor: { pid: number } }).supervisor.pid;
  await waitFor(() => notices.some((n) => n.fields['MAINPID'] !== undefined), { what: 'MAINPID' });
  const main = notices.find((n) => n.fields['MAINPID'] !== undefined)!;
  t.equal(Number(main.fields['MAINPID']), newPid, 'MAINPID names the successor');
  t.equal(main.fields['READY'], '1', 'with READY=1');
  t.not(newPid, firstPid);
  await waitFor(() => !isAlive(firstPid), { what: 'the old supervisor to exit' });
  const afterMain = notices.slice(notices.indexOf(main) + 1);
  t.notOk(afterMain.some((n) => n.fields['STOPPING'] === '1'), 'the old supervisor did not say STOPPING when it handed over');

  const r3 = await m.ctl('stop');
  t.equal(r3.exitCode, 0, r3.stderr);
  await waitFor(() => notices.some((n) => n.fields['STOPPING'] === '1'), { what: 'STOPPING=1' });
  const order = notices.map((n) => Object.keys(n.fields).filter((k) => ['READY', 'RELOADING', 'MAINPID', 'STOPPING'].includes(k)).sort().join('+')).filter((x) => x !== '');
  t.same(order, ['READY', 'RELOADING', 'READY', 'MAINPID+READY', 'STOPPING'], `order: ${order.join(' ')}`);
  await waitFor(() => !isAlive(newPid), { what: 'the supervisor to exit' });
});
