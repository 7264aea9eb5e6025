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
  window.addEventListener('popstate', show);

  const tz = document.getElementById('tz'), theme = document.getElementById('theme');
  tz.value = JQ.setting('tz') || 'utc';
  theme.value = JQ.setting('theme');
  tz.addEventListener('change', () => { JQ.setting('tz', tz.value); show(); });
  theme.addEventListener('change', () => { JQ.setting('theme', theme.value); JQ.applyTheme(); show(); });
  JQ.applyTheme();
  JQ.connect();
  show();
})();
