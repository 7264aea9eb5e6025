// Overview: tiles, throughput and latency charts, and the queue table, all
// from the event stream after one history read.
'use strict';
(() => {
  const { h } = JQ;
  const TILES = [
    ['queued', 'Queued', (t) => t.totals.queued],
    ['running', 'Running', (t) => t.totals.running],
    ['retrying', 'Retrying', (t) => t.totals.retrying],
    ['pending', 'Pending', (t) => t.totals.pending],
    ['failed_1h', 'Failed (1 h)', (t) => t.last_hour.failed, (t) => t.last_hour.failed > 0],
    ['rate', 'Jobs/s', (t) => (t.point ? t.point.completed : 0)],
    ['wait_p95', 'p95 wait', (t) => JQ.ms(t.point && t.point.wait_ms ? t.point.wait_ms.p95 : null)],
    ['workers', 'Live workers', (t) => t.workers],
    ['breakers', 'Open breakers', (t) => t.breakers.open, (t) => t.breakers.open > 0],
    ['paused', 'Paused queues', (t) => t.paused],
  ];
  const SPARK = 300; // points a sparkline keeps: five minutes of ticks
  const sparks = new Map(); // queue -> recent queued depths, kept across views

  JQ.tiles = (el, tick) => {
    el.replaceChildren(...TILES.map(([id, label, get, bad]) =>
      h('div', { class: 'tile' + (bad && bad(tick) ? ' bad' : ''), 'data-tile': id },
        h('div', { class: 'v' }, typeof get(tick) === 'number' ? JQ.num(get(tick)) : get(tick)),
        h('div', { class: 'k' }, label))));
  };

  function queueRow(q) {
    const canvas = h('canvas', { class: 'spark', 'aria-label': `queued depth of ${q.name}` });
    const row = h('tr', { 'data-queue': q.name },
      h('td', {}, JQ.link('/ui/queues/' + encodeURIComponent(q.name), q.name)),
      h('td', {}, q.paused ? JQ.state('paused') : ''),
      h('td', { class: 'num' }, JQ.num(q.queued)), h('td', { class: 'num' }, JQ.num(q.running)),
      h('td', { class: 'num' }, JQ.num(q.retrying)), h('td', { class: 'num' }, JQ.num(q.pending)),
      h('td', {}, canvas));
    return [row, canvas];
  }

  JQ.views.overview = {
    title: 'Overview',
    render(view) {
      let range = new URLSearchParams(location.search).get('range') || '5m';
      if (!JQ.RANGES[range]) range = '5m';
      const tiles = h('div', { class: 'tiles', id: 'tiles' });
      const select = h('select', { id: 'range', 'aria-label': 'Chart range' },
        Object.keys(JQ.RANGES).map((r) => h('option', { value: r, selected: r === range }, 'last ' + r)));
      const tp = h('div', { class: 'chart-body' }), lat = h('div', { class: 'chart-body' });
      const tbody = h('tbody');
      view.replaceChildren(
        h('div', { class: 'row space' }, h('h1', {}, 'Overview'), h('label', {}, 'Range ', select)),
        tiles,
        h('div', { class: 'charts' },
          h('section', { class: 'panel chart' }, h('h2', {}, 'Throughput (jobs/s)'), tp),
          h('section', { class: 'panel chart' }, h('h2', {}, 'Wait and run time (ms)'), lat)),
        h('h2', {}, 'Queues'),
        h('div', { class: 'panel scroll' }, h('table', { id: 'queues' },
          h('thead', {}, h('tr', {}, ['Queue', '', 'Queued', 'Running', 'Retrying', 'Pending', 'Last 5 min']
            .map((c, i) => h('th', { class: i > 1 && i < 6 ? 'num' : '' }, c)))), tbody)));
      let charts = [], resolution = '1s', gen = 0;
      const load = async () => {
        const mine = ++gen;
        charts.forEach((c) => c.destroy());
        tp.replaceChildren();
        lat.replaceChildren();
        resolution = JQ.RANGES[range][1];
        charts = [new JQ.Chart(tp, 'throughput', resolution), new JQ.Chart(lat, 'latency', resolution)];
        await JQ.loadHistory(null, range, charts);
        if (mine !== gen) return;
      };
      select.addEventListener('change', () => {
        range = select.value;
        const u = new URL(location.href);
        u.searchParams.set('range', range);
        history.replaceState(null, '', u);
        load().catch((e) => JQ.flash(e.message, true));
      });
      let minuteTimer = setInterval(() => { if (resolution === '1m') load().catch(() => {}); }, 60000);
      const onTick = (tick, type) => {
        JQ.tiles(tiles, tick);
        const rows = [];
        for (const q of tick.queues) {
          const s = sparks.get(q.name) || [];
          if (type === 'tick') s.push(q.queued);
          if (s.length > SPARK) s.shift();
          sparks.set(q.name, s);
          const [row, canvas] = queueRow(q);
          rows.push(row);
          requestAnimationFrame(() => JQ.sparkline(canvas, s.length > 1 ? s : [q.queued, q.queued]));
        }
        tbody.replaceChildren(...rows);
        if (type === 'tick' && resolution === '1s' && tick.point && charts.length) {
          const max = JQ.RANGES[range][0];
          charts.forEach((c) => { c.push(tick.point, max); c.draw(); });
        }
      };
      if (JQ.live.tick) onTick(JQ.live.tick, 'snapshot');
      const off = JQ.onTick(onTick);
      load().catch((e) => JQ.flash(e.message, true));
      const onResize = () => charts.forEach((c) => c.resize());
      window.addEventListener('resize', onResize);
      return () => {
        off();
        clearInterval(minuteTimer);
        window.removeEventListener('resize', onResize);
        charts.forEach((c) => c.destroy());
      };
    },
  };
})();
