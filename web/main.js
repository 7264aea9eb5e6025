// The page's router: /ui/<view>/<arg> picks a view; links with data-link
// move without reloading; settings apply at once.
'use strict';
(() => {
  const ROUTES = [
    [/^\/ui\/?$/, 'overview'],
    [/^\/ui\/queues\/([^/]+)$/, 'queue'],
    [/^\/ui\/jobs\/?$/, 'jobs'],
    [/^\/ui\/jobs\/([^/]+)$/, 'job'],
    [/^\/ui\/workers\/?$/, 'workers'],
    [/^\/ui\/breakers\/?$/, 'breakers'],
  ];
  let cleanup = null;

  function show() {
    const view = document.getElementById('view');
    if (cleanup) cleanup();
    cleanup = null;
    let name = null, args = [];
    for (const [re, v] of ROUTES) {
      const m = location.pathname.match(re);
      if (m) { name = v; args = m.slice(1).map(decodeURIComponent); break; }
    }
    for (const a of document.querySelectorAll('nav a')) {
      const on = a.dataset.nav === name || (name === 'job' && a.dataset.nav === 'jobs') || (name === 'queue' && a.dataset.nav === 'overview');
      if (on) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
    if (!name) {
      view.replaceChildren(JQ.h('h1', {}, 'Not found'), JQ.h('p', {}, JQ.link('/ui/', 'Back to the overview')));
      return;
    }
    const v = JQ.views[name];
    document.title = `${v.title}${args[0] ? ' ' + args[0] : ''} · jobq`;
    cleanup = v.render(view, args) || null;
  }

  JQ.go = (href) => {
    history.pushState(null, '', href);
    show();
    window.scrollTo(0, 0);
  };

  document.addEventListener('click', (e) => {
    const a = e.target.closest('a[data-link]');
    if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    JQ.go(a.getAttribute('href'));
  });
  window.addEventListener('popstate', () => { if (JQ.live.source) show(); });

  const tz = document.getElementById('tz'), theme = document.getElementById('theme');
  tz.value = JQ.setting('tz') || 'utc';
  theme.value = JQ.setting('theme');
  tz.addEventListener('change', () => { JQ.setting('tz', tz.value); show(); });
  theme.addEventListener('change', () => { JQ.setting('theme', theme.value); JQ.applyTheme(); show(); });
  JQ.applyTheme();

  // With API keys configured the page signs in once with a key; the
  // server answers with an HttpOnly session cookie and the key is dropped.
  const who = document.getElementById('who');
  const started = (me) => {
    JQ.role = me.role;
    who.replaceChildren(...(me.keys ? [JQ.h('span', { class: 'muted' }, `${me.name} (${me.role})`), ' ',
      JQ.h('button', { type: 'button', id: 'sign-out', onclick: async () => {
        await JQ.api('DELETE', '/v1/session');
        location.reload();
      } }, 'Sign out')] : []));
    if (!JQ.live.source) JQ.connect();
    show();
  };
  JQ.signIn = (message) => {
    if (JQ.live.source) { JQ.live.source.close(); JQ.live.source = null; }
    if (cleanup) { cleanup(); cleanup = null; }
    const key = JQ.h('input', { type: 'password', id: 'key', autocomplete: 'current-password', required: true, size: 40 });
    const err = JQ.h('p', { class: 'error', role: 'alert' }, message || '');
    const form = JQ.h('form', { class: 'panel', id: 'sign-in' }, JQ.h('h1', {}, 'Sign in'),
      JQ.h('p', {}, 'This jobq has API keys. Sign in with one; its role decides what you may do here.'),
      JQ.h('label', {}, 'API key ', key), ' ', JQ.h('button', { type: 'submit', class: 'primary' }, 'Sign in'), err);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      try {
        const me = await JQ.api('POST', '/v1/session', { key: key.value });
        key.value = '';
        started(me);
      } catch (x) { err.textContent = x.message; }
    });
    document.getElementById('view').replaceChildren(form);
    key.focus();
  };
  JQ.api('GET', '/v1/session').then((me) => {
    if (me.keys && !me.signed_in) JQ.signIn();
    else started(me);
  }).catch((e) => JQ.flash(e.message, true));
})();
