import { isUtf8 } from 'node:buffer'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { expectsContinue } from '../limits/expect-continue.js'
import { precheckJson } from '../limits/json-precheck.js'
import { badRequest, bodyTooLarge } from '../shared/errors.js'

const EMPTY = Buffer.alloc(0)

/** The client closed the connection before its body was complete. */
export class BodyAborted extends Error {
  constructor() {
    super('client went away while sending the request body')
  }
}

/**
 * Reads a request body whole, refusing it with 413 as soon as it passes `maxBytes` (a declared
 * Content-Length over the limit is refused before reading anything; 0: no limit). Bodies are
 * read once so a request can be re-sent to another instance on failover. With `res`, a client
 * waiting for `100 Continue` is sent it once its declared size is known to fit.
 */
export function readBody(req: IncomingMessage, limitBytes: number, res?: ServerResponse): Promise<Buffer> {
  const maxBytes = limitBytes === 0 ? Infinity : limitBytes
  const declared = req.headers['content-length']
  if (declared === undefined ? req.headers['transfer-encoding'] === undefined : declared === '0') {
    return Promise.resolve(EMPTY)
  }
  if (declared !== undefined && Number(declared) > maxBytes) return Promise.reject(bodyTooLarge(maxBytes))
  // The client waits for this before sending a body (Expect: 100-continue); it fits, so ask for it.
  if (res !== undefined && expectsContinue(req)) res.writeContinue()
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const cleanup = (): void => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('close', onClose)
      req.off('error', onClose)
    }
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size > maxBytes) {
        cleanup()
        reject(bodyTooLarge(maxBytes))
      } else chunks.push(chunk)
    }
    const onEnd = (): void => {
      cleanup()
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size))
    }
    const onClose = (): void => {
      cleanup()
      reject(new BodyAborted())
    }
    req.on('data', onData)
    req.once('end', onEnd)
    req.once('close', onClose)
    req.once('error', onClose)
  })
}

/** The fields corral reads from a JSON body; everything else passes through untouched. */
export interface RequestFields {
  json: Record<string, unknown>
  model: string | undefined
}

/**
 * Parses a JSON request body and checks the types of the fields corral reads, so a bad request is
 * refused here with a clear 400 instead of confusing an instance. Invalid UTF-8, nesting past
 * MAX_JSON_DEPTH and numbers out of range are refused before parsing (see precheckJson). An
 * empty body is left for the instance to refuse (Ollama answers `missing request body`).
 */
export function parseFields(body: Buffer): RequestFields | undefined {
  if (body.length === 0) return undefined
  // JSON text is UTF-8 (RFC 8259); decoding would silently turn bad bytes into U+FFFD.
  if (!isUtf8(body)) throw badRequest('request body is not valid UTF-8')
  const problem = precheckJson(body)
  if (problem !== undefined) throw badRequest(problem)
  let json: unknown
  try {
    json = JSON.parse(body.toString('utf8'))
  } catch (err) {
    throw badRequest(`invalid JSON in request body: ${(err as Error).message}`)
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw badRequest(`request body must be a JSON object, got ${json === null ? 'null' : Array.isArray(json) ? 'an array' : typeof json}`)
  }
  const fields = json as Record<string, unknown>
  const { model, options, messages, stream } = fields
  if (model !== undefined && model !== null && typeof model !== 'string') {
    throw badRequest(`model must be a string, got ${describe(model)}`)
  }
  if (options !== undefined && options !== null && (typeof options !== 'object' || Array.isArray(options))) {
    throw badRequest(`options must be an object, got ${describe(options)}`)
  }
  if (messages !== undefined && messages !== null && !Array.isArray(messages)) {
    throw badRequest(`messages must be an array, got ${describe(messages)}`)
  }
  if (stream !== undefined && stream !== null && typeof stream !== 'boolean') {
    throw badRequest(`stream must be true or false, got ${describe(stream)}`)
  }
  return { json: fields, model: typeof model === 'string' ? model : undefined }
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'an array'
  if (value === null) return 'null'
  const text = JSON.stringify(value)
  return `${typeof value} ${text.length > 40 ? `${text.slice(0, 40)}...` : text}`
}
