/**
 * A random order in which items of higher `weight` tend to come first (RFC 2782's selection for
 * SRV targets, repeated until every item is placed): each step picks one of the remaining items
 * with probability weight / sum of remaining weights. Items with weight 0 (or none) come after
 * the weighted ones, in uniform random order, so they get traffic only when those are gone. With
 * no weights at all it is a uniform shuffle. Sorts `items` in place and returns it.
 */
export function weightedOrder<T extends { readonly weight?: number }>(items: T[]): T[] {
  const n = items.length
  let total = 0
  for (const item of items) total += weightOf(item)
  for (let i = 0; i < n; i++) {
    let pick = i
    if (total > 0) {
      let point = Math.random() * total
      for (let j = i; j < n; j++) {
        const w = weightOf(items[j])
        if (w > 0 && point < w) {
          pick = j
          break
        }
        point -= w
        // Floating-point leftovers: the last weighted item takes the remainder.
        if (w > 0) pick = j
      }
    } else {
      pick = i + Math.floor(Math.random() * (n - i))
    }
    total -= weightOf(items[pick])
    ;[items[i], items[pick]] = [items[pick], items[i]]
  }
  return items
}

function weightOf(item: { readonly weight?: number }): number {
  const w = item.weight
  return w !== undefined && Number.isFinite(w) && w > 0 ? w : 0
}
