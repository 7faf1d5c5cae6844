// The console's weekly plots, drawn with uPlot (served from /assets, never a CDN).
const data = JSON.parse(document.getElementById('figures').textContent);
const rows = data.rows;
const weeks = [...new Set([...data.weeks, ...rows.map((r) => r.week)])].sort();
const districts = [...new Set(rows.map((r) => r.district))].sort();
const colours = ['#1e3a5f', '#c53030', '#1f9d55', '#d69e2e', '#6b46c1', '#2b6cb0', '#b83280'];
const xs = weeks.map((w) => Date.parse(w + 'T00:00:00+08:00') / 1000);

function plot(id, field, scale) {
  const el = document.getElementById(id);
  if (!el || !window.uPlot || !weeks.length) return;
  const series = districts.map((d) => weeks.map((w) => {
    const r = rows.find((x) => x.district === d && x.week === w);
    const v = r ? r[field] : null;
    return v === null || v === undefined ? null : v * scale;
  }));
  new uPlot({
    title: el.dataset.title,
    width: Math.min(el.clientWidth - 16, 1100),
    height: 240,
    scales: {x: {time: true}},
    series: [{}, ...districts.map((d, i) => ({
      label: d, stroke: colours[i % colours.length], width: 2, spanGaps: true,
      points: {show: true},
    }))],
  }, [xs, ...series], el);
  el.dataset.drawn = 'yes';
}

plot('plot-violations', 'violations', 1);
plot('plot-ontime', 'on_time_share', 100);
plot('plot-rectify', 'median_rectify_h', 1);
