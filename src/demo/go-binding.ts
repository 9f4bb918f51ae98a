/**
 * Request bodies read like gin's ShouldBindJSON into a Go struct, so clients of the fake see the
 * same 400s and the same encoding/json wording as from Ollama.
 */
import type { FakeExchange } from './fake-exchange.js'
import { isRecord } from './json-values.js'

export type FieldType = 'string' | 'boolean' | 'number' | 'object' | 'array'

/**
 * Parses the body: empty -> "missing request body", bad JSON or wrongly typed fields -> 400 with
 * encoding/json's wording. Undefined once answered.
 */
export function bindJSON(ex: FakeExchange, struct: string, fields: Record<string, FieldType>): Record<string, unknown> | undefined {
  const text = ex.record.raw.toString('utf8').trim()
  if (text === '') return void ex.sendError(400, 'missing request body')
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    return void ex.sendError(400, goSyntaxError(text, err))
  }
  if (value === null) return {}
  if (!isRecord(value)) return void ex.sendError(400, `json: cannot unmarshal ${goKind(value)} into Go value of type ${struct}`)
  for (const [field, type] of Object.entries(fields)) {
    const v = value[field]
    if (v === undefined || v === null || jsonKind(v) === type) continue
    const goType = { string: 'string', boolean: 'bool', number: 'int', object: 'map[string]interface {}', array: '[]interface {}' }[type]
    const where = `${struct.replace(/^\w+\./, '')}.${field}`
    return void ex.sendError(400, `json: cannot unmarshal ${goKind(v)} into Go struct field ${where} of type ${goType}`)
  }
  return value
}

function jsonKind(v: unknown): FieldType | 'null' {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  return typeof v as FieldType
}

/** The JSON type names Go's encoding/json uses in unmarshal errors. */
function goKind(v: unknown): string {
  return ({ string: 'string', boolean: 'bool', number: 'number', object: 'object', array: 'array', null: 'null' })[jsonKind(v)]
}

/** Roughly encoding/json's syntax errors, from what V8 says, so clients see the same kind of text. */
function goSyntaxError(text: string, err: unknown): string {
  const message = String(err)
  const position = /position (\d+)/.exec(message)
  const bad = position === null ? /Unexpected token '(.)'/.exec(message)?.[1] : text[Number(position[1])]
  return bad === undefined ? 'unexpected EOF' : `invalid character '${bad}' looking for beginning of value`
}
