// MetricsAggregator: worker snapshots summed with the supervisor's own
// metrics; a retired worker's counters stay, its gauges go; no render ever
// misses a worker that is being retired (counters never go backwards).
import t from 'tap';
import { SupervisorMetrics } from '../../src/supervisor/metrics.js';
import { WorkerMetrics } from '../../src/worker/metrics.js';
import { LATE_MS, MetricsAggregator } from '../../src/supervisor/metrics-agg.js';

/** A worker's snapshot, as it travels over IPC (JSON). */
async function worker(requests: number, active: number): Promise<unknown[]> {
  const w = new WorkerMetrics();
  w.httpRequests.labels('web', 'vh', 'r', '2xx').inc(requests);
  w.httpDuration.labels('web').observe(0.01);
  w.connectionsActive.labels('web').inc(active);
  return Promise.resolve(JSON.parse(JSON.stringify(w.snapshot())) as unknown[]);
}

/** The value of one sample line, e.g. `mosn_http_requests_total{...} 5`. */
function sample(text: string, prefix: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(prefix));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

const REQS = 'mosn_http_requests_total{listener="web",vhost="vh",route="r",status_class="2xx"}';
const ACTIVE = 'mosn_downstream_connections_active{listener="web"}';
const HIST_COUNT = 'mosn_http_request_duration_seconds_count{listener="web"}';

void t.test('sums live workers with the supervisor metrics', async (t) => {
  const own = new SupervisorMetrics();
  own.workerRestarts.inc(2);
  const agg = new MetricsAggregator(own);
  agg.update(101, await worker(3, 1));
  agg.update(102, await worker(4, 2));
  const { body, contentType } = await agg.render();
  t.match(contentType, /^text\/plain; version=0\.0\.4/);
  t.equal(sample(body, REQS), 7);
  t.equal(sample(body, ACTIVE), 3);
  t.equal(sample(body, HIST_COUNT), 2);
  t.equal(sample(body, 'mosn_worker_restarts_total'), 2);
  t.match(body, /^# TYPE mosn_http_requests_total counter$/m);
});

void t.test('a retired worker keeps its counters and histograms, loses its gauges', async (t) => {
  const agg = new MetricsAggregator(new SupervisorMetrics());
  agg.update(101, await worker(3, 1));
  agg.update(102, await worker(4, 2));
  await agg.retire(101);
  const { body } = await agg.render();
  t.equal(sample(body, REQS), 7, 'requests still counted');
  t.equal(sample(body, HIST_COUNT), 2, 'histogram still counted');
  t.equal(sample(body, ACTIVE), 2, 'gauge of the retired worker dropped');
  // A replacement starts from zero: the sum still never goes backwards.
  agg.update(103, await worker(0, 0));
  t.equal(sample((await agg.render()).body, REQS), 7);
});

void t.test('retiring a worker that never sent a snapshot is harmless', async (t) => {
  const agg = new MetricsAggregator(new SupervisorMetrics());
  agg.update(101, await worker(3, 1));
  await agg.retire(999);
  t.equal(sample((await agg.render()).body, REQS), 3);
});

void t.test('two workers retired at the same time: both kept', async (t) => {
  const agg = new MetricsAggregator(new SupervisorMetrics());
  agg.update(101, await worker(3, 1));
  agg.update(102, await worker(4, 1));
  await Promise.all([agg.retire(101), agg.retire(102)]);
  t.equal(sample((await agg.render()).body, REQS), 7);
});

void t.test('a render that overlaps a retirement still counts the retiring worker', async (t) => {
  for (const order of ['render first', 'retire first'] as const) {
    const agg = new MetricsAggregator(new SupervisorMetrics());
    agg.update(101, await worker(3, 1));
    agg.update(102, await worker(4, 1));
    let rendered: Promise<{ body: string }>;
    let retired: Promise<void>;
    if (order === 'render first') {
      rendered = agg.render();
      retired = agg.retire(101);
    } else {
      retired = agg.retire(101);
      rendered = agg.render();
    }
    const [{ body }] = await Promise.all([rendered, retired]);
    t.equal(sample(body, REQS), 7, `${order}: nothing missing`);
  }
});

void t.test('many retirements interleaved with renders: the sum only grows', async (t) => {
  const agg = new MetricsAggregator(new SupervisorMetrics());
  let total = 0;
  let last = 0;
  for (let pid = 1; pid <= 20; pid++) {
    agg.update(pid, await worker(pid, 1));
    total += pid;
  }
  const renders: Promise<{ body: string }>[] = [];
  for (let pid = 1; pid <= 20; pid++) {
    renders.push(agg.render());
    void agg.retire(pid);
    renders.push(agg.render());
  }
  for (const r of renders) {
    const v = sample((await r).body, REQS)!;
    t.equal(v, total, 'every render sees every count');
    t.ok(v >= last);
    last = v;
  }
});

void t.test('a snapshot delivered after the exit replaces the last one, once', async (t) => {
  const agg = new MetricsAggregator(new SupervisorMetrics());
  agg.update(101, await worker(3, 1));
  agg.update(102, await worker(4, 1));
  await agg.retire(101);
  // IPC may deliver the worker's final snapshot after its 'exit' event.
  agg.update(101, await worker(5, 1));
  const { body } = await agg.render();
  t.equal(sample(body, REQS), 9, 'final counts (5) replace the earlier ones (3), not added to them');
  t.equal(sample(body, ACTIVE), 1, 'and the exited worker is not live again');
  await agg.retire(101);
  t.equal(sample((await agg.render()).body, REQS), 9, 'retiring it twice changes nothing');
});

void t.test('exited snapshots are folded after LATE_MS; later messages from them are ignored', async (t) => {
  let now = 1_000_000;
  const agg = new MetricsAggregator(new SupervisorMetrics(), () => now);
  agg.update(101, await worker(3, 1));
  agg.update(102, await worker(4, 1));
  agg.update(103, await worker(10, 1));
  await agg.retire(101);
  now += LATE_MS;
  await agg.retire(102); // folds 101
  agg.update(101, await worker(50, 1)); // far too late: ignored
  t.equal(sample((await agg.render()).body, REQS), 17);
  now += LATE_MS;
  await agg.retire(103); // folds 102
  now += LATE_MS;
  await agg.retire(999); // folds 103
  const { body } = await agg.render();
  t.equal(sample(body, REQS), 17, 'everything folded, nothing lost or doubled');
  t.equal(sample(body, HIST_COUNT), 3);
  t.equal(sample(body, ACTIVE), undefined, 'no live worker: no gauge sample');
});
