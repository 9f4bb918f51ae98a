// Builds tap's Test class for the plugin set package.json asks for, when the installed one was
// built for another. tap does this itself at the start of a run, but a run that has to build first
// then runs its files one at a time, whatever `tap.jobs` says: on a fresh `npm ci` the suite took
// 358 s instead of 167 s. `npm test` runs this first (pretest), so every run is the parallel one.
import '@tapjs/core'
import { spawnSync } from 'node:child_process'
import { TapConfig } from '@tapjs/config'
import { signature } from '@tapjs/test'

const config = await TapConfig.load()
if (config.pluginSignature !== signature) {
  const built = spawnSync('npx', ['--no-install', 'tap', 'build'], { stdio: 'inherit' })
  process.exit(built.status ?? 1)
}
