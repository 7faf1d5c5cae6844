// The command-centre wall: no interaction. The state comes from /console/centre.json, again
// whenever an alert changes (the console's event stream) and every 10 s; the kitchens turn
// every 20 s, live through the public kitchen path when they show one, else a snapshot.
(() => {
const $ = (id) => document.getElementById(id);
let rotation = [];
let turn = 0;

function two(pair) {
  const s = document.createElement('span');
  s.append(pair[0] + ' ');
  const e = document.createElement('span'); e.className = 'en'; e.textContent = pair[1];
  s.append(e);
  return s;
}

async function refresh() {
  const r = await fetch('/console/centre.json', {cache: 'no-store'});
  if (r.status === 401) { location.href = '/console/login'; return; }
  if (!r.ok) return;
  const s = await r.json();
  $('ticker').replaceChildren(...s.ticker.map((a) => {
    const li = document.createElement('li');
    li.append(a.at + ' ' + a.site + ' ', two(a.type), ' · ', two(a.state));
    return li;
  }));
  for (const [k, v] of Object.entries(s.today)) {
    const el = $('today-' + k);
    if (el) el.textContent = v;
  }
  $('plan').replaceChildren(...Object.entries(s.plan).map(([district, sites]) => {
    const box = document.createElement('div');
    box.className = 'district';
    const h = document.createElement('h3'); h.textContent = district; box.append(h);
    for (const site of sites) {
      const d = document.createElement('span');
      d.className = 'site ' + site.state; d.title = site.site; box.append(d);
    }
    return box;
  }));
  rotation = s.rotation;
  if (!$('screen').dataset.shown) show();
}

function show() {
  if (!rotation.length) return;
  const k = rotation[turn++ % rotation.length];
  const panel = $('screen');
  const before = panel.querySelector('.view');
  if (before && before.stop) before.stop();  // no kitchen streams for a wall that moved on
  panel.dataset.shown = k.site;
  $('screen-site').textContent = k.site;
  if (k.live && window.shianWatch) {
    const view = document.createElement('div');
    view.className = 'view'; view.dataset.n = '1'; view.dataset.site = k.site;
    const screen = document.createElement('div'); screen.className = 'screen';
    view.append(screen);
    panel.replaceChildren(view);
    window.shianWatch(view);
  } else if (k.snapshot) {
    const img = document.createElement('img');
    img.src = '/snap/' + k.snapshot + '.jpg'; img.alt = k.site;
    panel.replaceChildren(img);
  }
}

new EventSource('/console/stream').addEventListener('alerts', refresh);
refresh();
setInterval(refresh, 10000);
setInterval(show, 20000);
})();
