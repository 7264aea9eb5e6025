// One job: its fields, args and result, a timeline of every attempt, why
// it is not running, and the actions: retry, cancel, delete, enqueue a copy.
'use strict';
(() => {
  const { h } = JQ;
  const json = (v) => h('pre', {}, v === null || v === undefined ? 'null' : JSON.stringify(v, null, 2));

  // What the job says of why it waits, in words.
  function whyNot(j) {
    if (j.state === 'running') return null;
    if (j.state === 'pending') return `Scheduled: it runs at ${JQ.time(j.run_at)}.`;
    if (j.state === 'retrying') return `Backing off after attempt ${j.attempts}: it runs again at ${JQ.time(j.run_at)}.`;
    if (j.state !== 'queued') return null;
    const b = j.blocked_by;
    if (!b) return 'Queued: only jobs ahead of it, or no worker leasing this queue, hold it back.';
    const [kind, ...rest] = b.split(':');
    const what = rest.join(':');
    return {
      paused: `Its queue ${what} is paused.`,
      breaker: `The circuit breaker for ${what} is open (or its probes are out).`,
      held: `A worker reported ${what} rate limited; it is held until the time it gave.`,
      concurrency: `The concurrency limit of ${what} is reached.`,
      rate: `The rate limit of ${what} has no token left.`,
    }[kind] || `Held back: ${b}.`;
  }

  // Every attempt, from the job's fields: created, failures (errors), the
  // latest start and the end.
  function timeline(j) {
    const items = [[j.created_at, 'enqueued', `into ${j.queue}`, false]];
    for (const e of j.errors || []) {
      items.push([e.at, `attempt ${e.attempt} failed`, [h('strong', {}, e.type), ': ', e.message || '',
        e.worker ? ` (worker ${e.worker})` : '', e.context ? json(e.context) : ''], true]);
    }
    if (j.started_at) items.push([j.started_at, `attempt ${j.attempts} started`, j.lease ? `leased by ${j.lease.worker}, until ${JQ.time(j.lease.expires_at)}` : '', false]);
    if (j.state === 'retrying' || j.state === 'pending') items.push([j.run_at, 'next run', j.state, false]);
    if (j.finished_at) items.push([j.finished_at, j.state, '', j.state === 'failed']);
    items.sort((a, b) => new Date(a[0]) - new Date(b[0]));
    return h('ol', { class: 'timeline', id: 'timeline' }, items.map(([t, what, detail, bad]) =>
      h('li', { class: bad ? 'fail' : '' }, h('div', {}, h('strong', {}, what), ' ', h('span', { class: 'muted' }, JQ.time(t))),
        h('div', {}, detail))));
  }

  function copyForm(j) {
    const area = h('textarea', { id: 'copy-args', 'aria-label': 'Arguments of the copy' }, JSON.stringify(j.args, null, 2));
    const send = JQ.action('Enqueue copy', async () => {
      let args;
      try { args = JSON.parse(area.value); } catch (e) { throw new Error('the arguments are not valid JSON: ' + e.message); }
      const body = { queue: j.queue, type: j.type, args, priority: j.priority, max_retries: j.max_retries,
        timeout_ms: j.timeout_ms };
      if (j.breaker_key) body.breaker_key = j.breaker_key;
      const c = await JQ.api('POST', '/v1/jobs', body);
      JQ.go('/ui/jobs/' + encodeURIComponent(c.id));
    }, { class: 'primary', 'data-requires': 'produce' });
    return h('details', {}, h('summary', {}, 'Enqueue a copy with edited arguments'), area, h('div', { class: 'row' }, send));
  }

  JQ.views.job = {
    title: 'Job',
    render(view, [id]) {
      const draw = (j) => {
        const path = `/v1/jobs/${encodeURIComponent(id)}`;
        const why = whyNot(j);
        const actions = h('div', { class: 'row', id: 'actions' },
          JQ.action('Retry', async () => draw(await JQ.api('POST', path + '/retry')),
            { disabled: !['failed', 'cancelled'].includes(j.state), 'data-requires': 'produce' }),
          JQ.action('Cancel', async () => {
            if (await JQ.confirm('Cancel this job?', `Cancel job ${id}${j.state === 'running' ? ' (its worker is asked to stop)' : ''}.`, 'Cancel job'))
              draw(await JQ.api('POST', path + '/cancel'));
          }, { class: 'danger', disabled: ['completed', 'failed', 'cancelled'].includes(j.state), 'data-requires': 'produce' }),
          JQ.action('Delete', async () => {
            if (!(await JQ.confirm('Delete this job?', `Delete job ${id} for good. This cannot be undone.`, 'Delete 1 job'))) return;
            await JQ.api('DELETE', path);
            JQ.go('/ui/jobs');
          }, { class: 'danger', disabled: !['completed', 'failed', 'cancelled'].includes(j.state), 'data-requires': 'admin' }));
        view.replaceChildren(
          h('h1', {}, 'Job ', h('code', {}, j.id), ' ', JQ.state(j.state)),
          why ? h('p', { class: 'why', id: 'why' }, why) : '',
          actions,
          h('div', { class: 'grid2' },
            h('section', { class: 'panel' }, h('h2', {}, 'Job'), h('dl', { class: 'kv' },
              [['queue', JQ.link('/ui/queues/' + encodeURIComponent(j.queue), j.queue)], ['type', j.type],
                ['priority', j.priority], ['attempts', `${j.attempts} of ${j.max_retries + 1}`],
                ['breaker key', j.breaker_key || '—'], ['created', JQ.time(j.created_at)],
                ['updated', JQ.time(j.updated_at)], ['run at', JQ.time(j.run_at)],
                ['lease', j.lease ? `${j.lease.worker} until ${JQ.time(j.lease.expires_at)}` : '—'],
                ['cancel requested', j.cancel_requested ? 'yes' : 'no']].map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]))),
            h('section', { class: 'panel' }, h('h2', {}, 'Timeline'), timeline(j))),
          h('div', { class: 'grid2' },
            h('section', { class: 'panel' }, h('h2', {}, 'Arguments'), json(j.args)),
            h('section', { class: 'panel' }, h('h2', {}, 'Result'), json(j.result),
              h('h2', {}, 'Progress'), json(j.progress))),
          copyForm(j));
        JQ.applyRole(view);
      };
      const load = () => JQ.api('GET', `/v1/jobs/${encodeURIComponent(id)}`).then(draw).catch((e) => {
        view.replaceChildren(h('h1', {}, 'Job ', h('code', {}, id)), h('p', { class: 'error' }, e.message));
      });
      view.replaceChildren(h('p', { class: 'muted' }, 'loading…'));
      load();
      // A change to this job (or, while it waits, any second) reloads it:
      // its why-not-running line follows breakers and limits too.
      let waiting = 0;
      const off = JQ.onTick((tick) => {
        const mine = tick.jobs.some((e) => e.id === id);
        if (mine || (++waiting % 5 === 0 && view.querySelector('#why'))) {
          if (!view.querySelector('details[open]') && !document.getElementById('confirm').open) load();
        }
      });
      return off;
    },
  };
})();
