// TimerList: the shared per-duration timeout lists of the request path.
// Real timers; the assertions are about order and "never early", with
// waits bounded by a deadline.
import t from 'tap';
import { TimerEntry, TimerList, timerList } from '../../src/common/timer-list.js';
import { waitFor } from '../helpers/wait.js';

void t.test('entries fire once, in order, never before their time; cancelled ones never', async (t) => {
  const list = new TimerList(40);
  const fired: [string, number][] = [];
  const start = performance.now();
  const entry = (name: string): TimerEntry => new TimerEntry(() => fired.push([name, performance.now() - start]));
  const a = entry('a');
  const b = entry('b');
  const c = entry('c');
  list.add(a);
  list.add(b);
  list.add(c);
  b.cancel();
  t.notOk(b.armed, 'a cancelled entry is not armed');
  t.ok(a.armed && c.armed);
  await waitFor(() => fired.length === 2, { timeoutMs: 2000, what: 'a and c to fire' });
  t.strictSame(fired.map(([n]) => n), ['a', 'c']);
  for (const [n, at] of fired) t.ok(at >= 39, `${n} fired after ${at.toFixed(1)} ms (>= 40 ms, less timer rounding)`);
  t.notOk(a.armed, 'a fired entry is disarmed');
  await new Promise((r) => setTimeout(r, 80));
  t.equal(fired.length, 2, 'nothing fired twice, b never');
});

void t.test('re-adding moves an entry to its new deadline; entries added while firing keep their time', async (t) => {
  const list = new TimerList(30);
  const other = new TimerList(200);
  const fired: string[] = [];
  const moved = new TimerEntry(() => fired.push('moved'));
  other.add(moved);
  list.add(moved); // from the 200 ms list to the 30 ms one
  let again = 0;
  const rearm: TimerEntry = new TimerEntry(() => {
    fired.push('rearm');
    if (++again < 3) list.add(rearm);
  });
  list.add(rearm);
  await waitFor(() => again === 3, { timeoutMs: 3000, what: 'three firings of the re-armed entry' });
  t.strictSame(fired, ['moved', 'rearm', 'rearm', 'rearm']);
  t.equal(timerList(30), timerList(30), 'one shared list per duration');
  t.throws(() => new TimerList(0), /duration > 0/);
});

void t.test('a throwing callback does not stop the list', async (t) => {
  const list = new TimerList(20);
  const fired: string[] = [];
  const onUncaught = (): void => {
    fired.push('threw');
  };
  process.once('uncaughtException', onUncaught);
  list.add(new TimerEntry(() => {
    throw new Error('boom');
  }));
  await waitFor(() => fired.length === 1, { timeoutMs: 2000, what: 'the throwing entry' });
  list.add(new TimerEntry(() => fired.push('later')));
  await waitFor(() => fired.length === 2, { timeoutMs: 2000, what: 'a later entry to fire' });
  t.strictSame(fired, ['threw', 'later']);
});
