import { z } from 'zod'
import { configSchema } from './schema.js'

/**
 * The JSON Schema of a config file, generated from the zod schema (the input side: what a user
 * writes, before defaults and unit parsing), for editors and `config/corral.schema.json`.
 */
function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' })
  return {
    ...schema,
    $id: 'https://github.com/corral/corral/config/corral.schema.json',
    title: 'corral configuration',
  }
}

/** The schema file's exact text, so a test can compare it byte for byte. */
export function configJsonSchemaText(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`
}
