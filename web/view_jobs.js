// Jobs: filters kept in the URL, cursor pages, and live rows: a job that
// changes shows its new state, and on the first page new jobs matching the
// filters appear at the top without a reload.
'use strict';
(() => {
  const { h } = JQ;
  const STATES = ['', 'pending', 'queued', 'running', 'retrying', 'completed', 'failed', 'cancelled'];
  const FILTERS = ['queue', 'state', 'type', 'priority', 'breaker_key', 'worker', 'text',
    'created_after', 'created_before', 'finished_after', 'finished_before'];
  const TEXT_FILTERS = ['queue', 'type', 'breaker_key', 'worker', 'text'];
  const PRIORITIES = ['', 'critical', 'high', 'normal', 'low', 'background'];
  const TIMES = ['created_after', 'created_before', 'finished_after', 'finished_before'];
  // datetime-local inputs hold local or UTC wall time (the Times setting);
  // the URL and the API hold RFC 3339.
  const toInput = (iso) => {
    if (!iso) return '';
    const d = new Date(iso);
    if (isNaN(d)) return '';
    const local = JQ.setting('tz') === 'local';
    const t = local ? new Date(d.getTime() - d.getTimezoneOffset() * 60000) : d;
    return t.toISOString().slice(0, 16);
  };
  const fromInput = (v) => {
    if (!v) return '';
    const local = JQ.setting('tz') === 'local';
    return (local ? new Date(v) : new Date(v + 'Z')).toISOString();
  };
  const MAX_ROWS = 500;

  function row(j, fresh) {
    return h('tr', { 'data-id': j.id, class: fresh ? 'new' : '' },
      h('td', {}, h('input', { type: 'checkbox', class: 'pick', 'aria-label': `select ${j.id}`, value: j.id })),
      h('td', {}, JQ.link('/ui/jobs/' + encodeURIComponent(j.id), j.id, { class: 'mono' })),
      h('td', {}, JQ.link('/ui/queues/' + encodeURIComponent(j.queue), j.queue)),
      h('td', {}, j.type), h('td', { class: 'st' }, JQ.state(j.state)), h('td', {}, j.priority),
      h('td', { class: 'num' }, j.attempts ?? ''), h('td', {}, JQ.time(j.created_at)),
      h('td', { class: 'upd' }, JQ.time(j.updated_at)));
  }

  // Actions on the rows picked (one request each), or on every job
  // matching the filters (one bulk action run by the server: a dry run
  // counts them first, and the dialog names that count). Returns what
  // a tick does to it: the running bulk's progress.
  function bulkControls(bulkBar, progress, tbody, filter) {
    const NEEDS = { retry: 'produce', cancel: 'produce', delete: 'admin' };
    const picked = () => [...tbody.querySelectorAll('.pick:checked')].map((c) => c.value);
    const onPicked = (action) => JQ.action(`${action[0].toUpperCase()}${action.slice(1)} selected`, async () => {
      const ids = picked();
      if (!ids.length) throw new Error('no row is selected');
      if (action !== 'retry' && !(await JQ.confirm(`${action} ${ids.length} jobs?`, `This will ${action} ${ids.length} selected job${ids.length > 1 ? 's' : ''}.`, `${action} ${ids.length}`))) return;
      let ok = 0;
      for (const id of ids) {
        const path = `/v1/jobs/${encodeURIComponent(id)}`;
        try { await JQ.api(action === 'delete' ? 'DELETE' : 'POST', action === 'delete' ? path : `${path}/${action}`); ok++; } catch (e) { /* counted below */ }
      }
      JQ.flash(`${action}: ${ok} of ${ids.length} done`, ok < ids.length);
    }, { 'data-requires': NEEDS[action] });
    let watching = null;
    const drawBulk = (b) => {
      const pct = Math.round(b.progress * 100);
      progress.replaceChildren(h('div', { class: 'panel row', 'data-bulk': b.id, 'data-state': b.state },
        h('strong', {}, `${b.action} all matching`), ' ', JQ.state(b.state), ' ',
        h('div', { class: 'progress', role: 'progressbar', 'aria-valuenow': pct, 'aria-valuemin': 0, 'aria-valuemax': 100 }, h('div')),
        h('span', { class: 'pct' }, `${pct}%`), ' ',
        h('span', { class: 'muted' }, `${JQ.num(b.processed)} of ${JQ.num(b.matched)}: ${JQ.num(b.changed)} changed, ${JQ.num(b.skipped)} skipped`),
        b.error ? h('span', { class: 'error' }, b.error) : '',
        ['scanning', 'applying'].includes(b.state) ? JQ.action('Stop', () => JQ.api('POST', `/v1/bulk/${b.id}/cancel`), { 'data-requires': 'produce' }) : ''));
      progress.querySelector('.progress > div').style.width = `${pct}%`; // CSSOM: allowed by the CSP
    };
    const bulk = (action) => JQ.action(`${action[0].toUpperCase()}${action.slice(1)} all matching`, async () => {
      const body = { filter, action, dry_run: true };
      const dry = await JQ.api('POST', '/v1/jobs/bulk', body);
      let b = dry;
      for (let i = 0; i < 600 && !['done', 'failed', 'cancelled'].includes(b.state); i++) {
        await new Promise((r) => setTimeout(r, 100));
        b = await JQ.api('GET', `/v1/bulk/${dry.id}`);
      }
      if (b.state !== 'done') throw new Error(b.error || `counting the matches ${b.state}`);
      if (!b.matched) { JQ.flash('No job matches these filters.'); return; }
      const what = `${action} ${JQ.num(b.matched)} job${b.matched > 1 ? 's' : ''}`;
      if (!(await JQ.confirm(`${what}?`, `This will ${what} matching the filters now (jobs no longer in a state it applies to are skipped).${action === 'delete' ? ' Deleted jobs cannot be brought back.' : ''}`, what))) return;
      const run = await JQ.api('POST', '/v1/jobs/bulk', { filter, action });
      watching = run.id;
      drawBulk(run);
    }, { class: action === 'retry' ? 'primary' : 'danger', 'data-requires': NEEDS[action] });
    bulkBar.replaceChildren(...['retry', 'cancel', 'delete'].map(onPicked), ' ', ...['retry', 'cancel', 'delete'].map(bulk));
    JQ.applyRole(bulkBar);
    return (tick) => {
      const b = watching && (tick.bulk || []).find((x) => x.id === watching);
      if (b) drawBulk(b);
    };
  }

  JQ.views.jobs = {
    title: 'Jobs',
    render(view) {
      const params = new URLSearchParams(location.search);
      const inputs = {
        state: h('select', { name: 'state' }, STATES.map((s) => h('option', { value: s, selected: s === (params.get('state') || '') }, s || 'any'))),
        priority: h('select', { name: 'priority' }, PRIORITIES.map((s) => h('option', { value: s, selected: s === (params.get('priority') || '') }, s || 'any'))),
      };
      for (const f of TEXT_FILTERS)
        inputs[f] = h('input', { name: f, value: params.get(f) || '', placeholder: f === 'text' ? 'in args, result, errors' : 'any', size: f === 'text' ? 22 : 12 });
      for (const f of TIMES)
        inputs[f] = h('input', { name: f, type: 'datetime-local', value: toInput(params.get(f)) });
      const value = (f) => (TIMES.includes(f) ? fromInput(inputs[f].value) : inputs[f].value.trim());
      const form = h('form', { class: 'filters', role: 'search' },
        FILTERS.map((f) => h('label', {}, f.replace('_', ' '), inputs[f])),
        h('button', { type: 'submit', class: 'primary' }, 'Apply'),
        h('button', { type: 'button', onclick: () => JQ.go('/ui/jobs') }, 'Clear'));
      const tbody = h('tbody');
      const more = h('div', { class: 'row' });
      const bulkBar = h('div', { class: 'row', id: 'bulk' });
      const progress = h('div', { id: 'bulk-progress' });
      const status = h('p', { class: 'muted', role: 'status' }, 'loading…');
      const all = h('input', { type: 'checkbox', 'aria-label': 'select every row on this page' });
      all.addEventListener('change', () => { for (const c of tbody.querySelectorAll('.pick')) c.checked = all.checked; });
      view.replaceChildren(h('h1', {}, 'Jobs'), form, status, bulkBar, progress,
        h('div', { class: 'panel scroll' }, h('table', { id: 'jobs' },
          h('thead', {}, h('tr', {}, h('th', {}, all), ['Id', 'Queue', 'Type', 'State', 'Priority', 'Attempts', 'Created', 'Updated'].map((c) => h('th', {}, c)))),
          tbody)), more);
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        const q = new URLSearchParams();
        for (const f of FILTERS) if (value(f)) q.set(f, value(f));
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

      const bulkTick = bulkControls(bulkBar, progress, tbody, filter);

      const off = JQ.onTick((tick) => {
        bulkTick(tick);
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
