// What every page shares: element building (text only: nothing from the
// server ever becomes markup), the API client, the live event stream,
// time formatting, settings and the confirmation dialog.
'use strict';
const JQ = (window.JQ = { views: {} });

// h('td', {class: 'num'}, 'text', child, ...): attributes and children;
// on* attributes take functions.
JQ.h = (tag, attrs, ...kids) => {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === undefined || kid === null || kid === false) continue;
    el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
};

JQ.link = (href, text, attrs) => JQ.h('a', { href, 'data-link': true, ...attrs }, text);

// The API: JSON in and out; errors carry the problem+json body.
JQ.api = async (method, path, body) => {
  // X-Jobq-Csrf: a change made with the session cookie must carry it
  // (no cross-site form can), guard.h.
  const opts = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
  if (method !== 'GET') opts.headers['X-Jobq-Csrf'] = '1';
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  const text = await r.text();
  const data = text ? JSON.parse(text) : null;
  if (r.status === 401 && JQ.signIn && path !== '/v1/session') JQ.signIn('Your session ended: sign in again.');
  if (!r.ok) {
    const e = new Error((data && data.detail) || `${r.status} ${r.statusText}`);
    e.status = r.status;
    e.problem = data;
    throw e;
  }
  return data;
};

// Settings kept in this browser.
JQ.setting = (key, value) => {
  if (value === undefined) return localStorage.getItem('jobq.' + key) || '';
  localStorage.setItem('jobq.' + key, value);
  return value;
};

JQ.applyTheme = () => {
  const t = JQ.setting('theme');
  if (t) document.documentElement.dataset.theme = t;
  else delete document.documentElement.dataset.theme;
};

// Times: RFC 3339 strings or epoch ms, shown in UTC or local time.
JQ.time = (t) => {
  if (t === null || t === undefined || t === '') return '—';
  const d = new Date(t);
  if (isNaN(d)) return String(t);
  if (JQ.setting('tz') === 'local') {
    const p = (n, w = 2) => String(n).padStart(w, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
      `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
};

JQ.ago = (t) => {
  if (!t) return '—';
  const s = Math.max(0, (Date.now() - new Date(t).getTime()) / 1000);
  if (s < 60) return `${s.toFixed(0)} s ago`;
  if (s < 3600) return `${(s / 60).toFixed(0)} min ago`;
  return `${(s / 3600).toFixed(1)} h ago`;
};

JQ.num = (n) => (n === null || n === undefined ? '—' : Number(n).toLocaleString('en-US'));
JQ.ms = (v) => (v === null || v === undefined ? '—' : v < 1 ? v.toFixed(2) + ' ms' :
  v < 1000 ? v.toFixed(0) + ' ms' : (v / 1000).toFixed(1) + ' s');
JQ.state = (s) => JQ.h('span', { class: `state ${s}` }, s.replace('_', '-'));

// The live stream: one EventSource for the tab; views subscribe to ticks.
JQ.live = { tick: null, subs: new Set(), source: null };
JQ.onTick = (fn) => {
  JQ.live.subs.add(fn);
  return () => JQ.live.subs.delete(fn);
};
JQ.connect = () => {
  const badge = document.getElementById('live');
  const es = new EventSource('/v1/events');
  JQ.live.source = es;
  const take = (ev) => {
    const tick = JSON.parse(ev.data);
    JQ.live.tick = tick;
    badge.textContent = 'live';
    badge.className = 'live on';
    for (const fn of [...JQ.live.subs]) {
      try { fn(tick, ev.type); } catch (e) { console.warn('view update failed', e); }
    }
  };
  es.addEventListener('snapshot', take);
  es.addEventListener('tick', take);
  es.addEventListener('bye', () => { badge.textContent = 'server stopping'; badge.className = 'live off'; });
  es.onerror = () => { badge.textContent = 'reconnecting'; badge.className = 'live off'; };
};

// A confirmation that names what it will do; resolves true or false. The
// dialog lives outside the page's view, so live redraws never touch it.
JQ.confirm = (title, text, yes = 'Confirm') => new Promise((resolve) => {
  const d = document.getElementById('confirm');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-yes').textContent = yes;
  d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true });
  d.returnValue = '';
  d.showModal();
  document.getElementById('confirm-no').focus();
});

// A button that runs an API call, shows its failure, and then calls done.
JQ.action = (label, run, attrs = {}) => {
  const b = JQ.h('button', { type: 'button', ...attrs }, label);
  b.addEventListener('click', async () => {
    b.disabled = true;
    try { await run(); } catch (e) { JQ.flash(e.message, true); } finally { b.disabled = false; }
  });
  return b;
};

JQ.flash = (text, bad) => {
  const el = JQ.h('div', { class: bad ? 'panel error' : 'panel', role: 'alert' }, text);
  const view = document.getElementById('view');
  view.prepend(el);
  setTimeout(() => el.remove(), 6000);
};

// What the key in use may do (GET /v1/session): a button marked
// data-requires="admin|produce|work" is disabled when its role may not;
// the server refuses such calls anyway.
JQ.role = 'admin';
const ALLOWS = { admin: ['admin', 'produce', 'work', 'read'], producer: ['produce', 'read'],
  worker: ['work', 'read'], reader: ['read'] };
JQ.may = (need) => (ALLOWS[JQ.role] || []).includes(need);
JQ.applyRole = (root) => {
  for (const b of root.querySelectorAll('[data-requires]')) {
    if (!JQ.may(b.dataset.requires)) {
      b.disabled = true;
      b.title = `your key's role (${JQ.role}) may not do this`;
    }
  }
};
