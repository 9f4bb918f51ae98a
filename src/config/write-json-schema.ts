/** `npm run schema`: regenerates config/corral.schema.json from the zod schema. */
import { writeFileSync } from 'node:fs'
import { configJsonSchemaText } from './json-schema.js'

const target = process.argv[2] ?? 'config/corral.schema.json'
writeFileSync(target, configJsonSchemaText())
process.stdout.write(`wrote ${target}\n`)
