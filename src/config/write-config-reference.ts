/** `npm run schema`: regenerates docs/configuration.md from the zod schema's descriptions. */
import { writeFileSync } from 'node:fs'
import { configReferenceText } from './config-reference.js'

const target = process.argv[2] ?? 'docs/configuration.md'
writeFileSync(target, configReferenceText())
process.stdout.write(`wrote ${target}\n`)
