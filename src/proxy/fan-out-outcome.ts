/**
 * How a model-management request sent to every instance (pull, create, copy, delete) ended at
 * each, and the one answer the client gets when it failed somewhere.
 */
import type { Instance } from '../balancer/instance.js'
import type { RouteName } from '../http/routes.js'
import { CorralError } from '../shared/errors.js'

/** How one instance's part of a model-management request ended. */
export interface Outcome {
  readonly instance: Instance
  /**
   * The instance's HTTP status (500 for an error line in its stream); undefined when there is no
   * answer to speak of (unreachable, or the answer broke off).
   */
  status: number | undefined
  readonly contentType: string | undefined
  ok: boolean
  /** The answer's body when it succeeded (not streamed), else the error message. */
  text: string
}

/** `pull failed on b, c: <errors> (succeeded on a)`. */
export function failureMessage(op: RouteName, outcomes: readonly Outcome[]): string {
  const failed = outcomes.filter((o) => !o.ok)
  const succeeded = outcomes.filter((o) => o.ok)
  const messages = new Set(failed.map((o) => o.text))
  const detail = messages.size === 1 ? failed[0]!.text : failed.map((o) => `${o.instance.name}: ${o.text}`).join('; ')
  const names = failed.map((o) => o.instance.name).join(', ')
  const also = succeeded.length === 0 ? '' : ` (succeeded on ${succeeded.map((o) => o.instance.name).join(', ')})`
  return `${op} failed on ${names}: ${detail}${also}`
}

/**
 * The error for a model-management request that failed somewhere. When every instance gave the
 * same error, it is answered as Ollama gave it (a delete of a model nobody has is Ollama's 404).
 * Otherwise: the one status the failed instances agree on when nothing succeeded (or, for pull
 * and create, when the others did), 502 when no instance could be reached, else 500 for a
 * partial failure; the message names every instance that failed and those that succeeded.
 */
export function combinedError(op: RouteName, outcomes: readonly Outcome[]): CorralError {
  const failed = outcomes.filter((o) => !o.ok)
  const statuses = new Set(failed.map((o) => o.status))
  const agreed = statuses.size === 1 ? failed[0]!.status : undefined
  const allFailed = failed.length === outcomes.length
  if (allFailed && agreed !== undefined && new Set(failed.map((o) => o.text)).size === 1) {
    return new CorralError('CORRAL_UPSTREAM_FAILED', agreed, failed[0]!.text)
  }
  let status = 500
  if (agreed !== undefined && (allFailed || op === 'pull' || op === 'create')) status = agreed
  else if (allFailed && failed.every((o) => o.status === undefined)) status = 502
  return new CorralError('CORRAL_UPSTREAM_FAILED', status, failureMessage(op, outcomes))
}
