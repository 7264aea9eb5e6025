// Breakers and limits: every breaker key with its state, failure counts
// and next probe, the server's history of state changes, and
// every execution and API limit with its tokens.
'use strict';
(() => {
  const { h } = JQ;
  let changes = []; // the server's last 256 breaker state changes, newest first

  JQ.views.breakers = {
    title: 'Breakers & limits',
    render(view) {
      const breakers = h('tbody'), limits = h('tbody'), log = h('ul', { id: 'breaker-log' }), api = h('dl', { class: 'kv' });
      view.replaceChildren(h('h1', {}, 'Breakers & limits'),
        h('h2', {}, 'Circuit breakers'),
        h('div', { class: 'panel scroll' }, h('table', { id: 'breakers' }, h('thead', {}, h('tr', {},
          ['Key', 'State', 'Failures in a row', 'Window', 'Queued', 'Next probe', 'Cool-down', ''].map((c) => h('th', {}, c)))), breakers)),
        h('h2', {}, 'State changes'), h('div', { class: 'panel' }, log),
        h('h2', {}, 'Execution limits'),
        h('div', { class: 'panel scroll' }, h('table', { id: 'limits' }, h('thead', {}, h('tr', {},
          ['Limit', 'Concurrency', 'Running', 'Rate/s', 'Burst', 'Tokens', 'Queued'].map((c) => h('th', {}, c)))), limits)),
        h('h2', {}, 'API and server limits'), h('div', { class: 'panel' }, api));
      const drawLog = () => log.replaceChildren(...(changes.length ? changes.map((c) =>
        h('li', {}, JQ.time(c.at), ' ', h('code', {}, c.key), ': ', c.from, ' → ', JQ.state(c.to)))
        : [h('li', { class: 'muted' }, 'None since jobq started.')]));
      const load = async () => {
        const [b, l] = await Promise.all([JQ.api('GET', '/v1/breakers'), JQ.api('GET', '/v1/limits')]);
        changes = b.changes;
        drawLog();
        breakers.replaceChildren(...(b.breakers.length ? b.breakers.map((x) => h('tr', { 'data-key': x.key },
          h('td', {}, h('code', {}, x.key)), h('td', {}, JQ.state(x.state)),
          h('td', { class: 'num' }, x.consecutive_failures), h('td', { class: 'num' }, `${x.window.failures}/${x.window.total}`),
          h('td', { class: 'num' }, JQ.num(x.queued)), h('td', {}, JQ.time(x.next_probe_at)),
          h('td', { class: 'num' }, JQ.ms(x.cooldown_ms)),
          h('td', {}, x.state !== 'closed' ? JQ.action('Reset', async () => {
            if (await JQ.confirm('Reset this breaker?', `Close the breaker ${x.key}: its jobs flow again at once.`, 'Reset'))
              { await JQ.api('POST', `/v1/breakers/${encodeURIComponent(x.key)}/reset`); await load(); }
          }, { 'data-requires': 'admin' }) : '')))
          : [h('tr', {}, h('td', { colspan: 8, class: 'muted' }, 'No breaker: no dependency failure seen.'))]));
        limits.replaceChildren(...(l.execution.length ? l.execution.map((x) => h('tr', {},
          h('td', {}, `${x.target}:${x.name}`), h('td', { class: 'num' }, x.concurrency || '—'),
          h('td', { class: 'num' }, JQ.num(x.running)), h('td', { class: 'num' }, x.rate ?? '—'),
          h('td', { class: 'num' }, x.burst ?? '—'), h('td', { class: 'num' }, x.tokens === undefined ? '—' : x.tokens.toFixed(2)),
          h('td', { class: 'num' }, x.queued ?? '—')))
          : [h('tr', {}, h('td', { colspan: 7, class: 'muted' }, 'No execution limit (JOBQ_LIMITS).'))]));
        api.replaceChildren(...[['API keys', l.api.keys ? `${l.api.key_count} configured` : 'none (open API on loopback)'],
          ['API rate', l.api.rate ? `${l.api.rate}/s per client, burst ${l.api.burst}` : 'unlimited'],
          ['Breaker rule', `${l.breakers.failures} failures in a row, or ratio ${l.breakers.ratio} over ${JQ.ms(l.breakers.window_ms)}`],
          ['Memory', `${JQ.num(l.memory.used_bytes)} of ${l.memory.limit_bytes ? JQ.num(l.memory.limit_bytes) : 'unlimited'} bytes`],
          ['Long polls', `${l.waiters.waiting} waiting of ${l.waiters.max}`]].map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]).flat());
        JQ.applyRole(view);
      };
      drawLog();
      load().catch((e) => JQ.flash(e.message, true));
      let n = 0;
      const off = JQ.onTick((tick) => {
        if ((tick.breaker_events.length || ++n % 2 === 0) && !document.getElementById('confirm').open)
          load().catch(() => {});
      });
      return off;
    },
  };
})();
