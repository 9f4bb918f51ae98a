/**
 * Counter and histogram families whose children are plain cells, for the request path.
 *
 * prom-client's own children (v15) hash their label object into a string on every `inc` and
 * `observe` (an allocation and about half a microsecond per call); these cells cost an addition
 * (a counter) or a bucket search and three additions (a histogram). The families register on the
 * registry like any prom-client metric: the registry only calls `get()` (and `reset()`), and the
 * values are turned into the exposition at scrape time.
 */
import type { Metric, Registry } from 'prom-client'
import { LabelChildren } from './label-children.js'

/** One counter child. */
export class CounterCell {
  readonly labels: Readonly<Record<string, string>>
  value = 0

  constructor(labels: Readonly<Record<string, string>>) {
    this.labels = labels
  }

  inc(by = 1): void {
    this.value += by
  }
}

/** One histogram child: per-bucket (not cumulative) counts, the last one for +Inf. */
export class HistogramCell {
  readonly labels: Readonly<Record<string, string>>
  readonly counts: Float64Array
  readonly #bounds: readonly number[]
  sum = 0
  count = 0

  constructor(labels: Readonly<Record<string, string>>, bounds: readonly number[]) {
    this.labels = labels
    this.#bounds = bounds
    this.counts = new Float64Array(bounds.length + 1)
  }

  observe(value: number): void {
    const bounds = this.#bounds
    let i = 0
    while (i < bounds.length && value > bounds[i]!) i++
    this.counts[i]!++
    this.sum += value
    this.count++
  }
}

interface FamilyConfig {
  name: string
  help: string
  labelNames: readonly string[]
  registry: Registry
}

/** A sample as prom-client's registry formats it. */
interface Sample {
  labels: Record<string, string | number>
  value: number
  metricName?: string
}

const labelsOf = (names: readonly string[], values: readonly string[]): Record<string, string> => {
  const labels: Record<string, string> = {}
  names.forEach((name, i) => (labels[name] = values[i] ?? ''))
  return labels
}

/** A counter family of {@link CounterCell}s. */
export class CellCounter {
  readonly name: string
  readonly help: string
  readonly type = 'counter'
  readonly aggregator = 'sum'
  readonly #labelNames: readonly string[]
  readonly #cells: CounterCell[] = []

  constructor(config: FamilyConfig) {
    this.name = config.name
    this.help = config.help
    this.#labelNames = config.labelNames
    // The registry reads families through get(); this is one without being a prom-client class.
    config.registry.registerMetric(this as unknown as Metric)
  }

  /** Children found by label values, created on first use (the label count comes from the family). */
  children(): LabelChildren<CounterCell> {
    return new LabelChildren(this.#labelNames.length, (values) => this.cell(values))
  }

  /** A new child for these label values (in label order); create each once and keep it. */
  cell(values: readonly string[]): CounterCell {
    const cell = new CounterCell(labelsOf(this.#labelNames, values))
    this.#cells.push(cell)
    return cell
  }

  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Sample[] }> {
    const values = this.#cells.map((c) => ({ labels: { ...c.labels }, value: c.value }))
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values })
  }

  reset(): void {
    for (const cell of this.#cells) cell.value = 0
  }
}

/** A histogram family of {@link HistogramCell}s. */
export class CellHistogram {
  readonly name: string
  readonly help: string
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  readonly #labelNames: readonly string[]
  readonly #bounds: readonly number[]
  readonly #cells: HistogramCell[] = []

  /** `buckets`: upper bounds, ascending (+Inf is added). */
  constructor(config: FamilyConfig & { buckets: readonly number[] }) {
    this.name = config.name
    this.help = config.help
    this.#labelNames = config.labelNames
    this.#bounds = Object.freeze([...config.buckets])
    config.registry.registerMetric(this as unknown as Metric)
  }

  /** Children found by label values, created on first use (the label count comes from the family). */
  children(): LabelChildren<HistogramCell> {
    return new LabelChildren(this.#labelNames.length, (values) => this.cell(values))
  }

  /** A new child for these label values (in label order); create each once and keep it. */
  cell(values: readonly string[]): HistogramCell {
    const cell = new HistogramCell(labelsOf(this.#labelNames, values), this.#bounds)
    this.#cells.push(cell)
    return cell
  }

  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Sample[] }> {
    const bucket = `${this.name}_bucket`
    const values: Sample[] = []
    for (const cell of this.#cells) {
      let cumulative = 0
      this.#bounds.forEach((le, i) => {
        cumulative += cell.counts[i]!
        values.push({ labels: { le, ...cell.labels }, value: cumulative, metricName: bucket })
      })
      values.push({ labels: { le: '+Inf', ...cell.labels }, value: cell.count, metricName: bucket })
      values.push({ labels: { ...cell.labels }, value: cell.sum, metricName: `${this.name}_sum` })
      values.push({ labels: { ...cell.labels }, value: cell.count, metricName: `${this.name}_count` })
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values })
  }

  reset(): void {
    for (const cell of this.#cells) {
      cell.counts.fill(0)
      cell.sum = 0
      cell.count = 0
    }
  }
}
