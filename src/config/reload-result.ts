/**
 * The shapes a configuration reload is requested and reported in (createCorral's `reload`, the
 * CLI's SIGHUP and --watch, `POST /api/admin/reload`).
 */
import type { Config } from './config.js'

/** Where a reload reads the configuration again (the CLI: the same file, environment and flags as at start). */
export interface ConfigSource {
  /** The config file, for messages; undefined when corral runs without one (nothing to reload). */
  readonly file: string | undefined
  /** Reads and validates the configuration again; throws `ConfigError` when it is invalid. */
  load(): Config
}

/** How a reload ended. */
export type ReloadResult =
  | {
      readonly status: 'reloaded'
      /** One line per change applied (see `planReload`). */
      readonly changes: readonly string[]
      /** YAML keys that changed but need a restart (their running values are kept). */
      readonly restartRequired: readonly string[]
    }
  /** The new configuration is invalid: nothing changed. */
  | { readonly status: 'invalid'; readonly error: string; readonly problems: readonly string[] }
  /** No reload is possible: no config file, or corral is shutting down. */
  | { readonly status: 'unavailable'; readonly error: string }

/** Called after every applied reload with the new and the previous configuration; must not throw. */
export type ReloadListener = (next: Config, prev: Config) => void
