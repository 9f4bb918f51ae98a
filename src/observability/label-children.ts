/**
 * Label children of one metric, created on first use and then found by a chain of Map lookups on
 * the label values: no key string is built and nothing is allocated once a combination was seen.
 * prom-client's own `labels()` hashes a fresh string per call, which the request path avoids.
 * Label values must come from bounded sets (the caller's job), so the tree stays small.
 */
type Node<C> = Map<string, Node<C> | C>

export class LabelChildren<C> {
  readonly #root: Node<C> = new Map()
  readonly #depth: number
  readonly #create: (values: string[]) => C

  /** `depth`: the metric's label count (1 to 6); `create` makes the child for these label values. */
  constructor(depth: number, create: (values: string[]) => C) {
    if (depth < 1 || depth > 6) throw new RangeError(`label count must be 1 to 6, got ${depth}`)
    this.#depth = depth
    this.#create = create
  }

  /** The child for these label values, in the metric's label order (unused trailing ones are ignored). */
  get(a: string, b = '', c = '', d = '', e = '', f = ''): C {
    let node = this.#root
    const last = this.#depth - 1
    for (let i = 0; i < last; i++) {
      const key = i === 0 ? a : i === 1 ? b : i === 2 ? c : i === 3 ? d : e
      let next = node.get(key) as Node<C> | undefined
      if (next === undefined) {
        next = new Map()
        node.set(key, next)
      }
      node = next
    }
    const key = last === 0 ? a : last === 1 ? b : last === 2 ? c : last === 3 ? d : last === 4 ? e : f
    let child = node.get(key) as C | undefined
    if (child === undefined) {
      child = this.#create([a, b, c, d, e, f].slice(0, this.#depth))
      node.set(key, child)
    }
    return child
  }
}
