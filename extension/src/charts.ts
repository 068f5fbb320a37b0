/**
 * The panels' SVG charts: elements, the chart box, text, and the legend under a chart.
 * Charts draw in a `CHART_WIDTH`-wide coordinate system and scale to the sidebar.
 */
import { el } from './format';

/** Width of the charts' coordinate system; they scale to the sidebar's width. */
export const CHART_WIDTH = 280;

const SVG = 'http://www.w3.org/2000/svg';

/** An SVG element with attributes (numbers are written as they are). */
export function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attributes: { [name: string]: string | number } = {},
  title?: string
): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) {
    node.setAttribute(name, String(value));
  }
  if (title !== undefined) {
    const tooltip = document.createElementNS(SVG, 'title');
    tooltip.textContent = title;
    node.append(tooltip);
  }
  return node;
}

/** An SVG `<text>` showing `text` (after its tooltip, if any). */
export function svgText(
  attributes: { [name: string]: string | number },
  text: string,
  title?: string
): SVGTextElement {
  const node = svg('text', attributes, title);
  node.append(document.createTextNode(text));
  return node;
}

/**
 * An empty chart `height` high: `<svg class="jp-ship-chart {className}">`, an image
 * labelled `label`; `width` wide in its own units (the sidebar's charts: `CHART_WIDTH`).
 */
export function chart(
  className: string,
  height: number,
  label: string,
  width: number = CHART_WIDTH
): SVGSVGElement {
  return svg('svg', {
    class: `jp-ship-chart ${className}`,
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-label': label
  });
}

/** The chart with its legend (swatches, basis tags, labels) under it. */
export function withLegend(node: SVGSVGElement, ...legend: HTMLElement[]): HTMLElement {
  const wrap = el('div', 'jp-ship-chart-wrap');
  const items = el('div', 'jp-ship-legend');
  items.append(...legend);
  wrap.append(node, items);
  return wrap;
}
