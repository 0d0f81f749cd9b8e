import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { Snapshot } from '../types';

const HEIGHT = 260;
const dayToSeconds = (d: string) => Date.parse(`${d}T00:00:00Z`) / 1000;

/**
 * The account's value, one point a day. The strings become numbers only for the geometry; the
 * legend shows the hovered day's value as the API wrote it. `describedBy` names the text summary
 * (the chart itself is an image to assistive technology).
 */
export function ValueChart({ points, describedBy }: { points: Snapshot[]; describedBy: string }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  // The legend's formatters read the points of the latest render, not those of the first.
  const current = useRef(points);
  current.current = points;

  useEffect(() => {
    const el = box.current!;
    const css = getComputedStyle(el);
    const accent = css.getPropertyValue('--accent').trim() || '#2457c5';
    const ink = css.getPropertyValue('--ink').trim() || '#1b1f24';
    const grid = css.getPropertyValue('--line').trim() || '#d0d7de';
    const axis = { stroke: ink, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const u = new uPlot(
      {
        width: Math.max(el.clientWidth, 200),
        height: HEIGHT,
        // Days are UTC dates: ticks in UTC, or a browser west of Greenwich labels each the day before.
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
        scales: { x: { time: true } },
        series: [
          { label: 'Day', value: (_u, _v, _s, i) => (i === null ? '—' : (current.current[i]?.date ?? '—')) },
          { label: 'Value', stroke: accent, width: 2, fill: `${accent}22`, value: (_u, _v, _s, i) => (i === null ? '—' : (current.current[i]?.equity ?? '—')) },
        ],
        axes: [axis, { ...axis, size: 80 }],
        cursor: { drag: { x: false, y: false } },
      },
      [[], []],
      el,
    );
    plot.current = u;
    // The chart follows its container's width (the page is responsive).
    // Only a new width resizes it: the legend changes the box's height, which must not loop back.
    let width = u.width;
    const ro = new ResizeObserver(() => {
      const w = Math.max(el.clientWidth, 200);
      if (w !== width) u.setSize({ width: (width = w), height: HEIGHT });
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, []);

  useEffect(() => {
    plot.current?.setData([points.map((p) => dayToSeconds(p.date)), points.map((p) => Number(p.equity))]);
  }, [points]);

  return <div ref={box} class="chart" role="img" aria-label="Value chart" aria-describedby={describedBy} />;
}
