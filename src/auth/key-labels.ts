/**
 * Bounded `key` metric labels for names that do not come from the configuration (JWT name
 * claims): the first `max` distinct names keep their own label, later ones share `other`, so a
 * token issuer with many subjects cannot grow the metric without bound.
 */
export const MAX_JWT_KEY_LABELS = 100

/** The shared label past the cap; in the JWT namespace (`jwt:`), so no key's label can be it. */
export const OTHER_LABEL = 'jwt:other'

export class KeyLabels {
  readonly #seen = new Set<string>()
  readonly #max: number

  constructor(max = MAX_JWT_KEY_LABELS) {
    this.#max = max
  }

  /** The label for this name. */
  labelOf(name: string): string {
    if (this.#seen.has(name)) return name
    if (this.#seen.size >= this.#max) return OTHER_LABEL
    this.#seen.add(name)
    return name
  }
}
