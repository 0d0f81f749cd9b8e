/**
 * `node dist/scripts/simulation/screenshot.js <report.html> <out.png>`: a PNG of a simulation report's
 * head (its summary cards and charts), for the README. The charts are the report's own SVGs, stacked
 * into one SVG and rasterised with resvg; no browser needed.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Resvg } from '@resvg/resvg-js';

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  process.stderr.write('usage: screenshot <report.html> <out.png>\n');
  process.exit(2);
}
const html = readFileSync(input, 'utf8');
const cards = [...html.matchAll(/<div class="card"><div class="v">([^<]*)<\/div><div class="l">([^<]*)<\/div><\/div>/g)].map((m) => ({ value: m[1]!, label: m[2]! }));
const charts = [...html.matchAll(/<svg[\s\S]*?<\/svg>/g)].map((m) => m[0]).slice(0, 3);
const sub = /<p class="sub">([^<]*)<\/p>/.exec(html)?.[1] ?? '';

const WIDTH = 960;
let y = 20;
const parts: string[] = [`<rect width="100%" height="100%" fill="#ffffff"/>`, `<text x="20" y="${(y += 28)}" font-size="26" font-weight="bold" font-family="DejaVu Sans">Account fleet simulation</text>`, `<text x="20" y="${(y += 22)}" font-size="12" fill="#666" font-family="DejaVu Sans">${sub.slice(0, 150)}</text>`];
y += 16;
cards.forEach((c, i) => {
  const x = 20 + i * 132;
  parts.push(`<rect x="${x}" y="${y}" width="122" height="58" rx="8" fill="none" stroke="#ddd"/>`, `<text x="${x + 12}" y="${y + 28}" font-size="20" font-weight="bold" font-family="DejaVu Sans">${c.value}</text>`, `<text x="${x + 12}" y="${y + 46}" font-size="11" fill="#666" font-family="DejaVu Sans">${c.label}</text>`);
});
y += 80;
for (const svg of charts) {
  const height = Number(/height="(\d+(?:\.\d+)?)"/.exec(svg)?.[1] ?? 300);
  parts.push(svg.replace('<svg', `<svg x="10" y="${y}"`));
  y += height + 10;
}
const page = `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${WIDTH}" height="${y}" viewBox="0 0 ${WIDTH} ${y}">${parts.join('')}</svg>`;
writeFileSync(output, new Resvg(page, { font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' }, background: '#ffffff' }).render().asPng());
process.stderr.write(`wrote ${output}\n`);
