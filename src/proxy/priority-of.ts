/**
 * The priority class of one request: the X-Corral-Priority header when the caller may set it
 * (an admin key, or anyone while auth is off: the anonymous principal is admin), else the key's
 * `priority`, else by shape: an embedding batch of `bulk_batch_size` inputs or more is bulk
 * (ingestion), everything else interactive. Reads the parsed body; allocates nothing.
 */
import { priorityClassNamed, type PriorityClass } from '../config/priority-class.js'
import type { Principal } from '../http/principal.js'
import type { Route } from '../http/routes.js'

export const PRIORITY_HEADER = 'x-corral-priority'

export function priorityOf(
  route: Route,
  json: Record<string, unknown> | undefined,
  header: string | string[] | undefined,
  principal: Principal,
  bulkBatchSize: number,
): PriorityClass {
  if (principal.admin) {
    const asked = priorityClassNamed(header)
    if (asked !== undefined) return asked
  }
  if (principal.priority !== undefined) return principal.priority
  if ((route.name === 'embed' || route.name === 'openai_embeddings') && json !== undefined) {
    const input = json.input
    if (Array.isArray(input) && input.length >= bulkBatchSize) return 'bulk'
  }
  return 'interactive'
}
