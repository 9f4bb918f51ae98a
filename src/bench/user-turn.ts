/**
 * One user turn of a workload, the unit every count and latency of a run is about:
 *
 * - `embed`: POST /api/embed with the question;
 * - `generate`: POST /api/generate with the question as prompt;
 * - `chat`: POST /api/chat with a system message and the question;
 * - `rag`: what a RAG service does per question: POST /api/embed, then POST /api/generate with a
 *   prompt made of retrieved passages and the question. The passages stand in for a vector
 *   store's answer and depend on the question only, so a repeated question builds the same prompt.
 *
 * A turn fails at its first failed call (a RAG turn whose embedding failed sends no generation).
 * Generations send `options.temperature` (0 by default: the deterministic answers RAG stacks
 * ask for, which corral's default cache policy stores).
 */
import { performance } from 'node:perf_hooks'
import type { BenchOptions } from './bench-options.js'
import { CONTEXT_PASSAGES } from './prompts.js'
import type { QuestionPicker } from './question-picker.js'
import type { RunRecorder } from './run-recorder.js'
import type { CallOutcome, CallPath, TargetClient } from './target-client.js'

type TurnOptions = Pick<BenchOptions, 'workload' | 'model' | 'embedModel' | 'stream' | 'temperature'>

export class UserTurns {
  readonly #client: TargetClient
  readonly #questions: QuestionPicker
  readonly #options: TurnOptions

  constructor(client: TargetClient, questions: QuestionPicker, options: TurnOptions) {
    this.#client = client
    this.#questions = questions
    this.#options = options
  }

  /** Runs one turn and records it in `recorder`; never rejects. */
  async run(recorder: RunRecorder, cancel: AbortSignal): Promise<void> {
    const question = this.#questions.next()
    recorder.turnStarted()
    const startedAt = performance.now()
    const { workload, model, stream, temperature } = this.#options
    const options = { temperature }
    let last: CallOutcome
    switch (workload) {
      case 'embed':
        last = await this.#call(recorder, '/api/embed', this.#embedBody(question), false, cancel, startedAt)
        break
      case 'generate':
        last = await this.#call(recorder, '/api/generate', { model, prompt: question, stream, options }, stream, cancel, startedAt)
        break
      case 'chat': {
        const messages = [
          { role: 'system', content: 'You are a concise support assistant.' },
          { role: 'user', content: question },
        ]
        last = await this.#call(recorder, '/api/chat', { model, messages, stream, options }, stream, cancel, startedAt)
        break
      }
      case 'rag': {
        last = await this.#call(recorder, '/api/embed', this.#embedBody(question), false, cancel, startedAt)
        if (last.ok) last = await this.#call(recorder, '/api/generate', { model, prompt: ragPrompt(question), stream, options }, stream, cancel, startedAt)
        break
      }
    }
    recorder.turnEnded(last.ok ? { ok: true, ms: performance.now() - startedAt, ttftMs: last.ttftMs } : last)
  }

  #embedBody(question: string): object {
    return { model: this.#options.embedModel, input: question }
  }

  async #call(recorder: RunRecorder, path: CallPath, body: object, stream: boolean, cancel: AbortSignal, startedAt: number): Promise<CallOutcome> {
    recorder.callSent(path)
    const outcome = await this.#client.call(path, body, stream, cancel, startedAt)
    if (outcome.ok) recorder.callSucceeded(path, outcome.ms)
    return outcome
  }
}

/** The prompt a RAG service would build: two passages picked by the question, then the question. */
export function ragPrompt(question: string): string {
  let h = 2166136261
  for (let i = 0; i < question.length; i++) h = Math.imul(h ^ question.charCodeAt(i), 16777619) >>> 0
  const n = CONTEXT_PASSAGES.length
  const first = h % n
  const second = (first + 1 + ((h >>> 8) % (n - 1))) % n
  return (
    'Answer the question using only the context below.\n\n' +
    `Context:\n- ${CONTEXT_PASSAGES[first]}\n- ${CONTEXT_PASSAGES[second]}\n\n` +
    `Question: ${question}\nAnswer:`
  )
}
