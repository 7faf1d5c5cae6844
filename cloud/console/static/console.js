// The console's alert list, live: the server says when any alert changed (Server-Sent
// Events); the list is fetched again, drawn by the server. docs/console.md
const body = document.getElementById('alerts');
if (body) {
  const q = body.dataset.q;
  const events = new EventSource('/console/stream?since=' + body.dataset.seq);
  events.addEventListener('alerts', async () => {
    const r = await fetch('/console/rows' + (q ? '?' + q : ''), {cache: 'no-store'});
    if (r.ok) body.innerHTML = await r.text();
    else if (r.status === 401) location.href = '/console/login';
  });
}
