/**
 * Measurements the browser tests share: how far an element's content reaches past its
 * box, and the WCAG contrast of a text against a background.
 */
import { IJupyterLabPageFixture } from '@jupyterlab/galata';

/** How far (px) the widest element of `selector` reaches past its box: 0 when it fits. */
export function overflowOf(page: IJupyterLabPageFixture, selector: string): Promise<number> {
  return page.evaluate(sel => {
    const node = document.querySelector<HTMLElement>(sel)!;
    return node.scrollWidth - node.clientWidth;
  }, selector);
}

/** WCAG contrast of an element's text colour against `box`'s background. */
export function contrastOf(
  page: IJupyterLabPageFixture,
  text: string,
  box: string
): Promise<number> {
  return page.evaluate(
    ([textSel, boxSel]) => {
      // Computed colours: "rgb(r, g, b)", "rgba(…)" or "color(srgb r g b / a)" (color-mix).
      const parse = (value: string): number[] => {
        const srgb = value.match(/color\(srgb ([\d.e-]+) ([\d.e-]+) ([\d.e-]+)/);
        if (srgb) {
          return srgb.slice(1, 4).map(v => Number(v) * 255);
        }
        return (value.match(/[\d.]+/g) ?? []).slice(0, 3).map(Number);
      };
      const luminance = (rgb: number[]): number => {
        const [r, g, b] = rgb.map(c => {
          const s = c / 255;
          return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
        });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
      };
      const fg = luminance(parse(getComputedStyle(document.querySelector(textSel)!).color));
      const bg = luminance(
        parse(getComputedStyle(document.querySelector(boxSel)!).backgroundColor)
      );
      return (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    },
    [text, box]
  );
}
