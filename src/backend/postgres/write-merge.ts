import type { Statements } from './schema';
import type { Stmt } from './write-buffer';

/**
 * A transaction's buffered writes with each run of consecutive plain sets (or clears) made one
 * statement: a consumer batch that pops 32 items, or answers 32 calls, sends one DELETE (or one
 * INSERT) instead of 32, which the client builds and parses, and the server plans and runs, once.
 * Writes keep their order (only neighbours merge); within a run the last set of a key wins, as it
 * would have. Keys and values go as comma-separated hex text, which both the pipelined (prepared)
 * and the simple-protocol (inlined, see commitLocked) paths take as they are.
 */
export function mergeWrites(stmts: Stmt[], st: Statements): Stmt[] {
  if (stmts.length < 2) return stmts;
  const out: Stmt[] = [];
  for (let i = 0; i < stmts.length;) {
    const text = stmts[i].text;
    let j = i + 1;
    if (text === st.set || text === st.clear) while (j < stmts.length && stmts[j].text === text) j++;
    if (j - i < 2) out.push(stmts[i]);
    else {
      const last = new Map<string, Stmt>();
      for (let n = i; n < j; n++) {
        const hex = (stmts[n].params[0] as Buffer).toString('hex');
        last.delete(hex); // (a later set of the key takes its place)
        last.set(hex, stmts[n]);
      }
      // One key left: as it was (a list of one empty key or value would be an empty string, no list).
      if (last.size === 1) out.push(...last.values());
      else if (text === st.clear) out.push({ text: st.clearMany, params: [[...last.keys()].join(',')] });
      else {
        const values = [...last.values()].map((s) => (s.params[1] as Buffer).toString('hex'));
        out.push({ text: st.setMany, params: [[...last.keys()].join(','), values.join(',')] });
      }
    }
    i = j;
  }
  return out;
}
