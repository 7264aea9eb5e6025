// Jobs: filters kept in the URL, cursor pages, and live rows: a job that
// changes shows its new state, and on the first page new jobs matching the
// filters appear at the top without a reload.
'use strict';
(() => {
  const { h } = JQ;
  const STATES = ['', 'pending', 'queued', 'running', 'retrying', 'completed', 'failed', 'cancelled'];
  const FILTERS = ['queue', 'state', 'type'];
  const MAX_ROWS = 500;

  function row(j, fresh) {
    return h('tr', { 'data-id': j.id, class: fresh ? 'new' : '' },
      h('td', {}, JQ.link('/ui/jobs/' + encodeURIComponent(j.id), j.id, { class: 'mono' })),
      h('td', {}, JQ.link('/ui/queues/' + encodeURIComponent(j.queue), j.queue)),
      h('td', {}, j.type), h('td', { class: 'st' }, JQ.state(j.state)), h('td', {}, j.priority),
      h('td', { class: 'num' }, j.attempts ?? ''), h('td', {}, JQ.time(j.created_at)),
      h('td', { class: 'upd' }, JQ.time(j.updated_at)));
  }

  JQ.views.jobs = {
    title: 'Jobs',
    render(view) {
      const params = new URLSearchParams(location.search);
      const inputs = {
        queue: h('input', { name: 'queue', value: params.get('queue') || '', placeholder: 'any', size: 14 }),
        type: h('input', { name: 'type', value: params.get('type') || '', placeholder: 'any', size: 14 }),
        state: h('select', { name: 'state' }, STATES.map((s) => h('option', { value: s, selected: s === (params.get('state') || '') }, s || 'any'))),
      };
      const form = h('form', { class: 'filters', role: 'search' },
        FILTERS.map((f) => h('label', {}, f, inputs[f])),
        h('button', { type: 'submit', class: 'primary' }, 'Apply'),
        h('button', { type: 'button', onclick: () => JQ.go('/ui/jobs') }, 'Clear'));
      const tbody = h('tbody');
      const more = h('div', { class: 'row' });
      const status = h('p', { class: 'muted', role: 'status' }, 'loading…');
      view.replaceChildren(h('h1', {}, 'Jobs'), form, status,
        h('div', { class: 'panel scroll' }, h('table', { id: 'jobs' },
          h('thead', {}, h('tr', {}, ['Id', 'Queue', 'Type', 'State', 'Priority', 'Attempts', 'Created', 'Updated'].map((c) => h('th', {}, c)))),
          tbody)), more);
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        const q = new URLSearchParams();
        for (const f of FILTERS) if (inputs[f].value.trim()) q.set(f, inputs[f].value.trim());
        JQ.go('/ui/jobs' + (q.toString() ? '?' + q : ''));
      });
      const filter = {};
      for (const f of FILTERS) if (params.get(f)) filter[f] = params.get(f);
      const cursor = params.get('cursor');
      const matches = (j) => FILTERS.every((f) => !filter[f] || j[f] === filter[f]);

      const q = new URLSearchParams({ ...filter, limit: '100' });
      if (cursor) q.set('cursor', cursor);
      JQ.api('GET', '/v1/jobs?' + q).then((r) => {
        status.textContent = r.jobs.length ? `${r.jobs.length} jobs on this page, newest first` : 'No job matches.';
        tbody.replaceChildren(...r.jobs.map((j) => row(j)));
        more.replaceChildren(
          cursor ? h('button', { type: 'button', onclick: () => history.back() }, '← Previous') : '',
          r.next_cursor ? JQ.action('Next page →', async () => {
            const n = new URLSearchParams(location.search);
            n.set('cursor', r.next_cursor);
            JQ.go('/ui/jobs?' + n);
          }) : '');
      }).catch((e) => { status.textContent = e.message; status.className = 'error'; });

      const off = JQ.onTick((tick) => {
        for (const ev of tick.jobs) {
          const tr = tbody.querySelector(`tr[data-id="${CSS.escape(ev.id)}"]`);
          if (tr) {
            tr.querySelector('.st').replaceChildren(JQ.state(ev.state));
            tr.querySelector('.upd').textContent = JQ.time(tick.t);
            if (filter.state && ev.state !== filter.state) tr.classList.add('muted');
          } else if (!cursor && ev.event === 'enqueued' && matches(ev)) {
            tbody.prepend(row({ ...ev, attempts: 0, created_at: tick.t, updated_at: tick.t }, true));
            if (tbody.rows.length > MAX_ROWS) tbody.lastElementChild.remove();
          }
        }
        if (tick.jobs_dropped && !cursor)
          status.textContent = 'Busy: some updates were skipped; reload for the exact list.';
      });
      return off;
    },
  };
})();
