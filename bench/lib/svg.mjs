// A small SVG bar chart, made here rather than with a charting library: grouped bars, a linear
// or logarithmic value axis, an optional goal line, and a legend. Enough for bench reports.

const esc = (text) =>
  String(text).replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");

/** Round numbers for a linear axis up to `max`. */
function linearTicks(max) {
  const step = 10 ** Math.floor(Math.log10(max / 4 || 1));
  const nice = [1, 2, 2.5, 5, 10].map((m) => m * step).find((s) => max / s <= 6) ?? step * 10;
  const ticks = [];
  for (let v = 0; v <= max + 1e-9; v += nice) ticks.push(v);
  return ticks;
}

const format = (v) =>
  v >= 1000
    ? `${(v / 1000).toLocaleString("en-US", { maximumFractionDigits: 1 })}k`
    : `${+v.toPrecision(3)}`;

/**
 * One panel of grouped bars, as SVG elements (a string) placed at (x, y) with the given size.
 *
 * @param {object} panel
 * @param {string} panel.title
 * @param {string[]} panel.groups labels along the x axis
 * @param {{ name: string, color: string, values: (number|null)[] }[]} panel.series
 * @param {string} panel.unit the value axis label
 * @param {boolean} [panel.log] a logarithmic value axis
 * @param {{ value: number, label: string }} [panel.goal] a dashed horizontal line
 * @param {(string|null)[]} [panel.notes] a label above each group
 */
export function barPanel(panel, { x, y, width, height }) {
  const left = x + 56;
  const right = x + width - 10;
  const top = y + 40;
  const bottom = y + height - 60;
  const all = panel.series.flatMap((s) => s.values).filter((v) => v !== null && v > 0);
  if (panel.goal) all.push(panel.goal.value);
  const max = Math.max(...all) * 1.1;
  let scale;
  let ticks;
  if (panel.log) {
    const lo = 10 ** Math.floor(Math.log10(Math.min(...all)));
    const hi = 10 ** Math.ceil(Math.log10(max));
    scale = (v) =>
      bottom -
      ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) *
        (bottom - top);
    ticks = [];
    for (let v = lo; v <= hi * 1.0001; v *= 10) ticks.push(v);
  } else {
    ticks = linearTicks(max);
    const hi = ticks[ticks.length - 1];
    scale = (v) => bottom - (v / hi) * (bottom - top);
  }
  const out = [];
  out.push(
    `<text x="${x + width / 2}" y="${y + 20}" text-anchor="middle" font-size="15" font-weight="bold">${esc(panel.title)}</text>`,
  );
  for (const t of ticks) {
    const ty = scale(t);
    out.push(`<line x1="${left}" x2="${right}" y1="${ty}" y2="${ty}" stroke="#ddd"/>`);
    out.push(
      `<text x="${left - 6}" y="${ty + 4}" text-anchor="end" font-size="11" fill="#555">${format(t)}</text>`,
    );
  }
  out.push(
    `<text x="${x + 14}" y="${(top + bottom) / 2}" font-size="12" fill="#333" text-anchor="middle" transform="rotate(-90 ${x + 14} ${(top + bottom) / 2})">${esc(panel.unit)}</text>`,
  );
  const groupWidth = (right - left) / panel.groups.length;
  const barWidth = Math.min(36, (groupWidth * 0.8) / panel.series.length);
  panel.groups.forEach((label, g) => {
    const center = left + groupWidth * (g + 0.5);
    const start = center - (barWidth * panel.series.length) / 2;
    let highest = bottom;
    panel.series.forEach((s, i) => {
      const v = s.values[g];
      if (v === null || v === undefined) return;
      const by = scale(v);
      highest = Math.min(highest, by);
      out.push(
        `<rect x="${start + i * barWidth}" y="${by}" width="${barWidth - 2}" height="${Math.max(0, bottom - by)}" fill="${s.color}"><title>${esc(`${s.name}, ${label}: ${format(v)} ${panel.unit}`)}</title></rect>`,
      );
    });
    out.push(
      `<text x="${center}" y="${bottom + 16}" text-anchor="middle" font-size="12">${esc(label)}</text>`,
    );
    const note = panel.notes?.[g];
    if (note)
      out.push(
        `<text x="${center}" y="${highest - 6}" text-anchor="middle" font-size="11" fill="#222">${esc(note)}</text>`,
      );
  });
  out.push(`<line x1="${left}" x2="${right}" y1="${bottom}" y2="${bottom}" stroke="#333"/>`);
  if (panel.goal) {
    const gy = scale(panel.goal.value);
    out.push(
      `<line x1="${left}" x2="${right}" y1="${gy}" y2="${gy}" stroke="#c00" stroke-dasharray="6 4"/>`,
    );
    out.push(
      `<text x="${right}" y="${gy - 4}" text-anchor="end" font-size="11" fill="#c00">${esc(panel.goal.label)}</text>`,
    );
  }
  let lx = left;
  for (const s of panel.series) {
    out.push(`<rect x="${lx}" y="${bottom + 30}" width="12" height="12" fill="${s.color}"/>`);
    out.push(`<text x="${lx + 16}" y="${bottom + 40}" font-size="12">${esc(s.name)}</text>`);
    lx += 24 + s.name.length * 6.5;
  }
  return out.join("\n");
}

/** A whole SVG document of panels side by side, with a caption line under them. */
export function chart(panels, { panelWidth = 480, height = 360, caption = "" } = {}) {
  const width = panelWidth * panels.length;
  const total = height + (caption ? 24 : 0);
  const body = panels
    .map((p, i) => barPanel(p, { x: i * panelWidth, y: 0, width: panelWidth, height }))
    .join("\n");
  const foot = caption
    ? `<text x="${width / 2}" y="${height + 14}" text-anchor="middle" font-size="11" fill="#555">${esc(caption)}</text>`
    : "";
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${total}" viewBox="0 0 ${width} ${total}" font-family="system-ui, sans-serif">
<rect width="100%" height="100%" fill="#fff"/>
${body}
${foot}
</svg>
`;
}
