// One queue: counts by state, depth / throughput / latency charts, its
// execution limits with their tokens and running counts, pause and resume.
'use strict';
(() => {
  const { h } = JQ;
  const STATES = ['pending', 'queued', 'running', 'retrying', 'completed', 'failed', 'cancelled'];

  JQ.views.queue = {
    title: 'Queue',
    render(view, [name]) {
      const counts = h('div', { class: 'tiles' });
      const limits = h('div', { class: 'panel scroll' }, h('p', { class: 'muted' }, 'loading…'));
      const prio = h('div', { class: 'panel scroll' }, h('p', { class: 'muted' }, 'loading…'));
      const bodies = [h('div'), h('div'), h('div')];
      const pause = h('span');
      view.replaceChildren(
        h('div', { class: 'row space' }, h('h1', {}, 'Queue ', h('code', {}, name)), pause),
        h('p', {}, JQ.link('/ui/jobs?queue=' + encodeURIComponent(name), 'Jobs in this queue →')),
        counts,
        h('h2', {}, 'Unfinished jobs by state and priority'), prio,
        h('div', { class: 'charts' },
          h('section', { class: 'panel chart' }, h('h2', {}, 'Depth'), bodies[0]),
          h('section', { class: 'panel chart' }, h('h2', {}, 'Throughput (jobs/s)'), bodies[1]),
          h('section', { class: 'panel chart' }, h('h2', {}, 'Wait and run time (ms)'), bodies[2])),
        h('h2', {}, 'Limits'), limits);
      const charts = [new JQ.Chart(bodies[0], 'depth', '1s'), new JQ.Chart(bodies[1], 'throughput', '1s'),
        new JQ.Chart(bodies[2], 'latency', '1s')];
      JQ.loadHistory(name, '15m', charts).catch((e) => JQ.flash(e.message, true));

      let stored = null; // finished counts come from the store, read on load
      const drawCounts = (live) => {
        counts.replaceChildren(...STATES.map((s) => {
          const v = live && s in live ? live[s] : stored ? stored[s] || 0 : null;
          return h('div', { class: 'tile', 'data-state': s }, h('div', { class: 'v' }, JQ.num(v)), h('div', { class: 'k' }, s));
        }));
      };
      let shown = null;
      const drawPause = (paused) => {
        if (paused === shown) return; // keep the button (and its focus) while nothing changed
        shown = paused;
        pause.replaceChildren(paused ? JQ.state('paused') : '', ' ',
          JQ.action(paused ? 'Resume queue' : 'Pause queue', async () => {
            const r = await JQ.api('POST', `/v1/queues/${encodeURIComponent(name)}/${paused ? 'resume' : 'pause'}`);
            drawPause(r.paused);
          }, { id: 'pause', class: paused ? 'primary' : 'danger', 'data-requires': 'admin' }));
        JQ.applyRole(pause);
      };
      JQ.api('GET', '/v1/stats').then((st) => {
        const q = st.queues && st.queues[name];
        stored = q ? q.counts : {};
        drawCounts(liveOf(JQ.live.tick));
        if (q) drawPause(q.paused);
      }).catch((e) => JQ.flash(e.message, true));
      JQ.api('GET', '/v1/limits').then((l) => {
        const mine = (l.execution || []).filter((x) => x.target === 'queue' && x.name === name);
        limits.replaceChildren(mine.length ? h('table', {},
          h('thead', {}, h('tr', {}, ['Limit', 'Concurrency', 'Running', 'Rate/s', 'Burst', 'Tokens'].map((c) => h('th', {}, c)))),
          h('tbody', {}, mine.map((x) => h('tr', {}, h('td', {}, `${x.target}:${x.name}`),
            h('td', { class: 'num' }, x.concurrency || '—'), h('td', { class: 'num' }, JQ.num(x.running)),
            h('td', { class: 'num' }, x.rate ?? '—'), h('td', { class: 'num' }, x.burst ?? '—'),
            h('td', { class: 'num' }, x.tokens === undefined ? '—' : x.tokens.toFixed(2))))))
          : h('p', { class: 'muted' }, 'No execution limit on this queue (see JOBQ_LIMITS).'));
      }).catch((e) => JQ.flash(e.message, true));

      const PRIOS = ['critical', 'high', 'normal', 'low', 'background'];
      const drawPrio = () => JQ.api('GET', '/v1/queues').then((r) => {
        const q = r.queues.find((x) => x.name === name);
        const bp = q && q.by_priority;
        prio.replaceChildren(bp ? h('table', { id: 'by-priority' },
          h('thead', {}, h('tr', {}, h('th', {}, 'state'), PRIOS.map((p) => h('th', { class: 'num' }, p)))),
          h('tbody', {}, Object.keys(bp).map((st) => h('tr', { 'data-state': st }, h('td', {}, JQ.state(st)),
            PRIOS.map((p) => h('td', { class: 'num', 'data-priority': p }, JQ.num(bp[st][p])))))))
          : h('p', { class: 'muted' }, 'No job of this queue is in memory.'));
      }).catch((e) => JQ.flash(e.message, true));
      drawPrio();
      let ticks = 0;

      const liveOf = (tick) => tick && tick.queues.find((q) => q.name === name);
      const off = JQ.onTick((tick, type) => {
        if (++ticks % 5 === 0) drawPrio();
        const q = liveOf(tick);
        if (!q) return;
        drawCounts(q);
        if (stored) drawPause(q.paused);
        if (type === 'tick' && q.point) charts.forEach((c) => { c.push(q.point, 900); c.draw(); });
      });
      return () => { off(); charts.forEach((c) => c.destroy()); };
    },
  };
})();
