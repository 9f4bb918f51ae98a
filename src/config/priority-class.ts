/**
 * The two classes of model work corral queues apart: `interactive` (a person waits for the
 * answer: chats, generations, query embeddings) and `bulk` (ingestion: embedding batches sent back
 * to back). Waiting interactive requests are served first; bulk uses what they leave.
 */
export type PriorityClass = 'interactive' | 'bulk'

export const PRIORITY_CLASSES: readonly PriorityClass[] = Object.freeze(['interactive', 'bulk'])

/** The class named by a header value, or undefined for anything else (the header is then ignored). */
export function priorityClassNamed(value: string | string[] | undefined): PriorityClass | undefined {
  if (typeof value !== 'string') return undefined
  const v = value.trim().toLowerCase()
  return v === 'interactive' || v === 'bulk' ? v : undefined
}
