// Charts of chart history (GET /v1/history) with uPlot, live from ticks,
// and the queue table's sparklines (a canvas each: a sparkline needs no
// axes, legend or library).
'use strict';
(() => {
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  const RANGES = { '5m': [300, '1s'], '15m': [900, '1s'], '1h': [3600, '1m'], '6h': [21600, '1m'], '24h': [86400, '1m'] };
  JQ.RANGES = RANGES;

  // kinds: 'throughput' (outcomes per second) or 'latency' (percentiles, ms).
  const SERIES = {
    throughput: [['completed', '--ok', (p) => p.completed], ['failed', '--bad', (p) => p.failed],
      ['cancelled', '--warn', (p) => p.cancelled]],
    latency: [['wait p50', '--accent', (p) => p.wait_ms && p.wait_ms.p50],
      ['wait p95', '--focus', (p) => p.wait_ms && p.wait_ms.p95],
      ['wait p99', '--muted', (p) => p.wait_ms && p.wait_ms.p99],
      ['run p50', '--ok', (p) => p.run_ms && p.run_ms.p50],
      ['run p95', '--warn', (p) => p.run_ms && p.run_ms.p95],
      ['run p99', '--bad', (p) => p.run_ms && p.run_ms.p99]],
    depth: [['queued', '--accent', (p) => p.queued], ['running', '--ok', (p) => p.running],
      ['retrying', '--warn', (p) => p.retrying], ['pending', '--muted', (p) => p.pending]],
  };

  class Chart {
    constructor(el, kind, resolution) {
      this.el = el;
      this.kind = kind;
      this.per = resolution === '1m' ? 60 : 1; // throughput is per second either way
      this.data = [[], ...SERIES[kind].map(() => [])];
      this.plot = null;
    }
    value(s, p) {
      const v = s[2](p);
      if (v === null || v === undefined) return null;
      return this.kind === 'throughput' ? v / this.per : v;
    }
    push(p, max) {
      const t = new Date(p.t).getTime() / 1000, xs = this.data[0];
      if (xs.length && t <= xs[xs.length - 1]) return; // a tick the history read already had
      xs.push(t);
      SERIES[this.kind].forEach((s, i) => this.data[i + 1].push(this.value(s, p)));
      while (max && this.data[0].length > max) this.data.forEach((a) => a.shift());
    }
    draw() {
      const width = Math.max(280, this.el.clientWidth - 4);
      if (!this.plot) {
        const axis = { stroke: css('--muted'), grid: { stroke: css('--line') }, ticks: { stroke: css('--line') } };
        this.plot = new uPlot({
          width, height: 200,
          series: [{}, ...SERIES[this.kind].map(([label, color]) => ({ label, stroke: css(color), width: 1.5, spanGaps: this.kind === 'latency' }))],
          axes: [{ ...axis }, { ...axis, size: 60 }],
          scales: { x: { time: true } },
          tzDate: (ts) => (JQ.setting('tz') === 'local' ? new Date(ts * 1e3) : uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC')),
        }, this.data, this.el);
      } else {
        this.plot.setData(this.data);
      }
    }
    resize() { if (this.plot) this.plot.setSize({ width: Math.max(280, this.el.clientWidth - 4), height: 200 }); }
    destroy() { if (this.plot) this.plot.destroy(); }
  }
  JQ.Chart = Chart;

  // Loads a range of history for a queue (null: all) into charts.
  JQ.loadHistory = async (queue, range, charts) => {
    const [seconds, resolution] = RANGES[range];
    const since = new Date(Date.now() - seconds * 1000).toISOString();
    const q = new URLSearchParams({ resolution, since });
    if (queue) q.set('queue', queue);
    let h;
    try { h = await JQ.api('GET', '/v1/history?' + q); } catch (e) {
      if (e.status === 404) h = { points: [] }; else throw e;
    }
    for (const c of charts) {
      for (const p of h.points) c.push(p);
      c.draw();
    }
    return resolution;
  };

  JQ.sparkline = (canvas, values) => {
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || 120, hgt = canvas.clientHeight || 24;
    canvas.width = w * ratio;
    canvas.height = hgt * ratio;
    const g = canvas.getContext('2d');
    g.scale(ratio, ratio);
    g.clearRect(0, 0, w, hgt);
    if (values.length < 2) return;
    const max = Math.max(1, ...values);
    g.strokeStyle = css('--accent');
    g.lineWidth = 1.2;
    g.beginPath();
    values.forEach((v, i) => {
      const x = (i / (values.length - 1)) * (w - 2) + 1, y = hgt - 1 - (v / max) * (hgt - 2);
      if (i) g.lineTo(x, y); else g.moveTo(x, y);
    });
    g.stroke();
  };
})();
