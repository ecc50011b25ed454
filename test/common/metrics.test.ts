// The hot-path metric types: a FastHistogram reads out exactly as
// prom-client's Histogram does for the same observations, and Tallies reach
// their prom-client metric whenever the registry is read.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import t from 'tap';
import { FastHistogram, WorkerMetrics } from '../../src/common/metrics.js';

void t.test('FastHistogram matches prom-client Histogram, in JSON and in text', async (t) => {
  const buckets = [0.001, 0.01, 0.1, 1];
  const a = new Registry();
  const b = new Registry();
  const ref = new Histogram({ name: 'h', help: 'help', labelNames: ['listener', 'x'] as const, buckets, registers: [a] });
  const fast = new FastHistogram('h', 'help', ['listener', 'x'] as const, buckets, b);
  // On a bound, between bounds, above all bounds, zero; two label sets.
  const samples: [string, number][] = [['web', 0.001], ['web', 0.005], ['web', 0.5], ['web', 7], ['web', 0], ['api', 0.01], ['api', 0.01]];
  for (const [l, v] of samples) {
    ref.labels(l, 'y').observe(v);
    fast.labels(l, 'y').observe(v);
  }
  // Compared as they travel over IPC (JSON).
  const json = async (r: Registry): Promise<unknown> => JSON.parse(JSON.stringify(await r.getMetricsAsJSON())) as unknown;
  t.strictSame(await json(b), await json(a), 'same JSON (what workers send)');
  t.equal(await b.metrics(), await a.metrics(), 'same text exposition');
  t.throws(() => fast.labels('only-one'), /2 label values expected, got 1/);
  fast.reset();
  t.same((await b.getMetricsAsJSON())[0]!.values, [], 'reset empties it');
});

void t.test('tallies are folded into their metrics when the registry is read', async (t) => {
  const m = new WorkerMetrics();
  const reqs = m.tally(m.httpRequests, 'web', 'vh', 'r', '2xx');
  t.equal(m.tally(m.httpRequests, 'web', 'vh', 'r', '2xx'), reqs, 'one tally per label set');
  const active = m.tally(m.connectionsActive, 'web');
  reqs.inc();
  reqs.inc(4);
  active.inc(3);
  active.dec();
  const value = async (name: string): Promise<number | undefined> => (await m.registry.getMetricsAsJSON()).find((x) => x.name === name)?.values[0]?.value;
  t.equal(await value('mosn_http_requests_total'), 5);
  t.equal(await value('mosn_downstream_connections_active'), 2);
  active.dec(2);
  reqs.inc();
  t.match(await m.registry.metrics(), /mosn_downstream_connections_active\{listener="web"\} 0\n/, 'a gauge goes down');
  t.equal(await value('mosn_http_requests_total'), 6, 'nothing counted twice');
  // The same prom-client types still take direct updates alongside.
  t.ok(m.httpRequests instanceof Counter && m.connectionsActive instanceof Gauge);
});
