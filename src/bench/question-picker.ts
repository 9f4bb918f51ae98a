import { Prng } from './prng.js'
import { ZipfSampler } from './zipf-sampler.js'

/**
 * Which question the next request asks. Without a skew the prompts are asked in order, wrapping
 * around (the fewest repeats a set of that size allows); with `zipf` the prompt of rank k (its
 * line number) is asked with probability proportional to 1/k^s, drawn from the seeded PRNG, so two
 * runs with the same seed ask the same questions in the same order.
 */
export class QuestionPicker {
  readonly #prompts: readonly string[]
  readonly #zipf: ZipfSampler | undefined
  #next = 0

  constructor(prompts: readonly string[], zipf: number | undefined, seed: number) {
    this.#prompts = prompts
    this.#zipf = zipf === undefined ? undefined : new ZipfSampler(prompts.length, zipf, new Prng(seed))
  }

  /** The index of the next question in the prompt list. */
  nextIndex(): number {
    if (this.#zipf !== undefined) return this.#zipf.next()
    const i = this.#next
    this.#next = (i + 1) % this.#prompts.length
    return i
  }

  next(): string {
    return this.#prompts[this.nextIndex()]!
  }
}
