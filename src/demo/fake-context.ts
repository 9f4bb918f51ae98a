/**
 * What the fake's route handlers share: the models, the slots and the fixed answer settings.
 * Handlers are plain functions of (context, exchange), so each family of routes lives in its own
 * file and the server only owns sockets, recording and lifecycle.
 */
import type { AnswerClock } from './answer-clock.js'
import type { EmbeddingPool } from './embedding-pool.js'
import type { ModelCatalog } from './model-catalog.js'
import type { SlotQueue } from './slot-queue.js'

export interface FakeContext {
  readonly catalog: ModelCatalog
  /** The slot queue (runner) of a model: the server's only one unless `slotsPerModel`. */
  slotsFor(model: string): SlotQueue
  /** Tokens per answer unless num_predict/max_tokens is smaller. */
  readonly tokens: number
  /** Answer of /api/version. */
  readonly version: string
  /** Precomputed vectors, when embeddings must be cheap. */
  readonly pool: EmbeddingPool | undefined
  /** Times in answers: measured, or frozen for byte-identical answers. */
  readonly clock: AnswerClock
  /** A fresh number for OpenAI ids (`chatcmpl-N`). */
  nextId(): number
}
