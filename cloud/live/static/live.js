// The public page's live views (cloud/site_page.py): tap, start, play, leave. docs/live.md
// The command-centre wall uses watch() too (window.shianWatch), with a view of its own making.
(() => {
const wait = (ms) => new Promise((r) => setTimeout(r, ms));
let player = null;
function loadPlayer() {
  if (!player) player = new Promise((ok) => {
    const s = document.createElement('script');
    s.src = '/assets/hls.light.min.js'; s.onload = ok; s.onerror = ok;
    document.head.appendChild(s);
  });
  return player;
}
function say(view, zh, en, cls) {
  const p = document.createElement('div');
  p.className = cls || 'notice';
  p.append(zh + ' ');
  const e = document.createElement('span'); e.className = 'en'; e.textContent = en; p.append(e);
  view.querySelector('.screen').replaceChildren(p);
}
async function state(url, method) {
  const r = await fetch(url, {method: method || 'GET', cache: 'no-store'});
  if (!r.ok) return {state: 'notice', zh: '直播暂不可用', en: 'Live view not available'};
  return r.json();
}
async function watch(view) {
  view.dataset.tapped = performance.now();
  say(view, '正在连接…', 'Connecting…');
  const site = view.closest('[data-site]').dataset.site;
  let a = await state('/k/' + encodeURIComponent(site) + '/live/' + view.dataset.n, 'POST');
  await loadPlayer();
  show(view, a, 0);
}
async function show(view, a, tries) {
  if (view.stopped) return;
  while (a.state === 'starting' && tries++ < 60 && !view.stopped) {
    await wait(700);
    a = await state('/live/' + a.token);
  }
  if (a.state !== 'live') {
    view.dataset.state = 'notice';
    return say(view, a.zh || '直播已结束', a.en || 'The live view has ended');
  }
  view.dataset.token = a.token;
  view.dataset.state = 'live';
  const again = async () => {
    await wait(800);
    if (!view.stopped) show(view, await state('/live/' + a.token), tries + 1);
  };
  // the wall turns to the next kitchen: this viewer leaves at once
  view.stop = () => {
    view.stopped = true;
    if (view.hls) view.hls.destroy();
    navigator.sendBeacon('/live/' + a.token + '/leave');
  };
  if (a.mode === 'jpeg') {
    const img = document.createElement('img');
    let i = 0;
    img.onload = () => {
      firstFrame(view);
      setTimeout(() => { if (!view.stopped) img.src = a.frame + '?i=' + i++; }, 1000);
    };
    img.onerror = again;
    img.src = a.frame + '?i=' + i++;
    return view.querySelector('.screen').replaceChildren(img);
  }
  const v = document.createElement('video');
  v.muted = true; v.playsInline = true; v.autoplay = true;
  v.addEventListener('playing', () => firstFrame(view));
  view.querySelector('.screen').replaceChildren(v);
  if (window.Hls && Hls.isSupported()) {
    const h = view.hls = new Hls({liveSyncDurationCount: 2});
    h.on(Hls.Events.ERROR, (_e, d) => { if (d.fatal) { h.destroy(); again(); } });
    h.loadSource(a.play); h.attachMedia(v);
  } else { v.src = a.play; v.onerror = again; }
  v.play().catch(() => {});
}
function firstFrame(view) {
  if (!view.dataset.firstFrameMs)
    view.dataset.firstFrameMs = Math.round(performance.now() - view.dataset.tapped);
}
document.querySelectorAll('.view .watch').forEach((b) =>
  b.addEventListener('click', () => watch(b.closest('.view'))));
window.shianWatch = watch;
addEventListener('pagehide', () => document.querySelectorAll('.view[data-token]').forEach((v) =>
  navigator.sendBeacon('/live/' + v.dataset.token + '/leave')));
})();
