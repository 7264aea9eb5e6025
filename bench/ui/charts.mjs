// Which chart library the dashboard ships (docs/dashboard.md, "Why uPlot"):
// bytes shipped and time to draw 10,000 points x 3 series in Debian's
// chromium, both libraries in one run, alternating, medians of 7.
//   node bench/ui/charts.mjs UPLOT_DIR CHARTJS_FILE
// UPLOT_DIR: node_modules/uplot/dist (npm), CHARTJS_FILE:
// /usr/share/javascript/chart.js/chart.min.js (Debian's libjs-chart.js).
import http from 'node:http';
import fs from 'node:fs';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';

const require = createRequire(process.env.JOBQ_NODE_PATH ? process.env.JOBQ_NODE_PATH + '/' : import.meta.url);
const { chromium } = require('playwright-core');
const [uplotDir, chartjsFile] = process.argv.slice(2);
const N = 10000, RUNS = 7;
const libs = {
  uplot: { js: fs.readFileSync(`${uplotDir}/uPlot.iife.min.js`), css: fs.readFileSync(`${uplotDir}/uPlot.min.css`) },
  chartjs: { js: fs.readFileSync(chartjsFile), css: Buffer.alloc(0) },
};
const draw = {
  uplot: `const t0 = performance.now();
    const opts = { width: 1000, height: 300, series: [{}, {stroke: 'red'}, {stroke: 'blue'}, {stroke: 'green'}] };
    new uPlot(opts, data, document.getElementById('c'));
    return performance.now() - t0;`,
  chartjs: `const t0 = performance.now();
    const cv = document.createElement('canvas'); cv.width = 1000; cv.height = 300;
    document.getElementById('c').appendChild(cv);
    new Chart(cv, { type: 'line', options: { animation: false, responsive: false, parsing: false, normalized: true,
      scales: { x: { type: 'linear' } }, elements: { point: { radius: 0 } } },
      data: { datasets: [1, 2, 3].map(k => ({ data: data[0].map((x, i) => ({ x, y: data[k][i] })) })) } });
    return performance.now() - t0;`,
};
const page = (name) => `<!doctype html><html><head><style>${libs[name].css}</style>
  <script src="/${name}.js"></script></head><body><div id="c"></div></body></html>`;
const srv = http.createServer((req, res) => {
  const m = req.url.match(/^\/(\w+)(\.js)?$/);
  if (!m || !libs[m[1]]) { res.writeHead(404); return res.end(); }
  res.writeHead(200, { 'Content-Type': m[2] ? 'text/javascript' : 'text/html' });
  res.end(m[2] ? libs[m[1]].js : page(m[1]));
});
await new Promise(r => srv.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${srv.address().port}`;
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
const times = { uplot: [], chartjs: [] };
for (let i = 0; i < RUNS; i++) {
  for (const name of Object.keys(libs)) {
    const p = await browser.newPage();
    await p.goto(`${base}/${name}`);
    const ms = await p.evaluate(`(() => {
      const data = [[], [], [], []];
      for (let i = 0; i < ${N}; i++) { data[0].push(i); data[1].push(Math.sin(i / 50) * 100);
        data[2].push(Math.cos(i / 70) * 80); data[3].push((i * 7919) % 97); }
      ${draw[name]} })()`);
    times[name].push(ms);
    await p.close();
  }
}
await browser.close();
srv.close();
const median = a => [...a].sort((x, y) => x - y)[a.length >> 1];
console.log('library   bytes_min  bytes_gzip  draw_10k_x3_ms(median of ' + RUNS + ')');
for (const name of Object.keys(libs)) {
  const all = Buffer.concat([libs[name].js, libs[name].css]);
  console.log(`${name.padEnd(9)} ${String(all.length).padStart(9)} ${String(zlib.gzipSync(all, { level: 9 }).length).padStart(11)}  ${median(times[name]).toFixed(1)}`);
}
