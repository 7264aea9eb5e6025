// Workers: every lessee (HTTP, Faktory protocol, built-in runners), its
// jobs, heartbeat age, throughput and failures; quiet and terminate for
// Faktory worker processes, the only ones with a channel to hear it.
'use strict';
(() => {
  const { h } = JQ;
  JQ.views.workers = {
    title: 'Workers',
    render(view) {
      const tbody = h('tbody');
      const status = h('p', { class: 'muted', role: 'status' }, 'loading…');
      view.replaceChildren(h('h1', {}, 'Workers'), status, h('div', { class: 'panel scroll' }, h('table', { id: 'workers' },
        h('thead', {}, h('tr', {}, ['Worker', 'Kind', 'State', 'Active jobs', 'Completed', 'Failed', 'Success', 'Avg run', 'Last seen', 'Heartbeat', ''].map((c) => h('th', {}, c)))),
        tbody)));
      const signal = (w, what) => JQ.action(what, async () => {
        if (what === 'terminate' && !(await JQ.confirm('Terminate this worker?', `Worker ${w.id} is asked to exit at its next heartbeat.`, 'Terminate')))
          return;
        await JQ.api('POST', `/v1/workers/${encodeURIComponent(w.id)}/${what}`);
        load();
      }, { class: what === 'terminate' ? 'danger' : '', 'data-requires': 'admin' });
      const load = () => JQ.api('GET', '/v1/workers').then((r) => {
        status.textContent = `${r.workers.length} workers seen; gone ones are forgotten after a while.`;
        tbody.replaceChildren(...r.workers.map((w) => h('tr', { 'data-worker': w.id },
          h('td', {}, JQ.link('/ui/jobs?worker=' + encodeURIComponent(w.id), w.id, { title: 'the jobs it holds' })),
          h('td', {}, w.protocol || (w.id.startsWith('jobq-') ? 'runner' : 'http')),
          h('td', {}, w.gone ? JQ.state('gone') : JQ.state(w.state || 'active')),
          h('td', { class: 'num' }, JQ.num(w.active_leases)), h('td', { class: 'num' }, JQ.num(w.completed)),
          h('td', { class: 'num' }, JQ.num(w.failed)),
          h('td', { class: 'num' }, w.success_rate === null ? '—' : (w.success_rate * 100).toFixed(1) + ' %'),
          h('td', { class: 'num' }, JQ.ms(w.avg_execution_ms)), h('td', {}, JQ.ago(w.last_seen)),
          h('td', {}, w.last_beat ? JQ.ago(w.last_beat) : '—'),
          h('td', {}, w.protocol ? [signal(w, 'quiet'), ' ', signal(w, 'terminate')] : h('span', { class: 'muted' }, 'no channel')))));
        JQ.applyRole(tbody);
      }).catch((e) => { status.textContent = e.message; status.className = 'error'; });
      load();
      let n = 0;
      const off = JQ.onTick(() => { if (++n % 2 === 0 && !document.getElementById('confirm').open) load(); });
      return off;
    },
  };
})();
