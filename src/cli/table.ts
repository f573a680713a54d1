/**
 * A plain-text table: left-aligned columns separated by two spaces, numbers right-aligned. Our own
 * 40 lines rather than a dependency: the inspector prints pages of a stream, so widths can only grow
 * from page to page (a `Widths` is kept across pages) — table libraries want every row up front.
 */
export type Cell = string | number;

export class Table {
  private widths: number[];

  constructor(private readonly header: readonly string[]) {
    this.widths = header.map((h) => h.length);
  }

  /** The header line and its underline. */
  head(): string {
    return [this.line(this.header), this.line(this.widths.map((w) => '-'.repeat(w)))].join('\n');
  }

  /** Lines for `rows`, widening columns as needed (later pages keep the widest so far). */
  rows(rows: ReadonlyArray<readonly Cell[]>): string[] {
    for (const r of rows)
      r.forEach((c, i) => (this.widths[i] = Math.max(this.widths[i] ?? 0, String(c).length)));
    return rows.map((r) => this.line(r));
  }

  /** Header and rows at once (for a table that is not streamed). */
  render(rows: ReadonlyArray<readonly Cell[]>): string {
    const body = this.rows(rows);
    return [this.head(), ...body].join('\n');
  }

  private line(cells: readonly Cell[]): string {
    return cells
      .map((c, i) => {
        const s = String(c);
        const w = this.widths[i] ?? s.length;
        return typeof c === 'number' ? s.padStart(w) : s.padEnd(w);
      })
      .join('  ')
      .trimEnd();
  }
}

/** A duration in ms as a short human string: 850ms, 12.3s, 4m05s, 2h10m, 3d04h. */
export function ago(ms: number | null): string {
  if (ms === null) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}
