import * as vega from 'vega';
import * as vl from 'vega-lite';
import { Resvg } from '@resvg/resvg-js';
import { writeFileAtomic } from './atomic.js';

export type VegaLiteSpec = vl.TopLevelSpec;

/** A Vega-Lite spec as SVG text (rendered here: no browser, no script in the result). */
export async function chartSvg(spec: VegaLiteSpec): Promise<string> {
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

/** Render a Vega-Lite spec to `<base>.svg` and `<base>.png` (PNG at 2x for sharp text). */
export async function renderChart(spec: VegaLiteSpec, base: string): Promise<{ svg: string; png: string }> {
  const svg = await chartSvg(spec);
  const png = new Resvg(svg, {
    background: 'white',
    fitTo: { mode: 'zoom', value: 2 },
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
  })
    .render()
    .asPng();
  await writeFileAtomic(`${base}.svg`, svg);
  await writeFileAtomic(`${base}.png`, png);
  return { svg: `${base}.svg`, png: `${base}.png` };
}
