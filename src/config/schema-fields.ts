/**
 * Builders of the config schema's common fields (durations, counts, sizes, host:port, origins),
 * each with its default and the description the JSON Schema and the docs show.
 */
import { z } from 'zod'
import { parseDuration, parseSize } from './units.js'

export const show = (value: unknown): string => JSON.stringify(value) ?? String(value)

/** A duration string (`30s`, `5m`, `250ms`) or a number of milliseconds, at least `minMs`. */
export function duration(fallback: string, description: string, minMs = 0) {
  return z
    .union([z.string(), z.number()])
    .refine((v) => parseDuration(v) !== undefined, {
      error: (iss) => `must be a duration like "30s", "5m" or "250ms", got ${show(iss.input)}`,
    })
    .refine((v) => (parseDuration(v) ?? Infinity) >= minMs, {
      error: (iss) => `must be at least ${minMs} ms, got ${show(iss.input)}`,
    })
    .default(fallback)
    .meta({ description: `${description}${minMs >= 1000 ? ` At least ${minMs / 1000}s.` : ''} Default ${fallback}.` })
}

/** A whole number of at least `min`. */
export function count(fallback: number, description: string, min = 1) {
  return z
    .number()
    .int({ error: (iss) => `must be a whole number, got ${show(iss.input)}` })
    .min(min, { error: (iss) => `must be at least ${min}, got ${show(iss.input)}` })
    .default(fallback)
    .meta({ description: `${description} Default ${fallback}.` })
}

/** A size string (`32MiB`, `64KiB`) or a number of bytes. */
export function size(fallback: string, description: string) {
  return z
    .union([z.string(), z.number()])
    .refine((v) => parseSize(v) !== undefined, {
      error: (iss) => `must be a size like "32MiB", "64KiB" or a number of bytes, got ${show(iss.input)}`,
    })
    .default(fallback)
    .meta({ description: `${description} Default ${fallback}.` })
}

/** `http(s)://host[:port]` with nothing after it but an optional `/`. */
export function isOrigin(value: string): boolean {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return false
  }
  return (
    (url.protocol === 'http:' || url.protocol === 'https:') &&
    url.pathname === '/' &&
    url.search === '' &&
    url.hash === '' &&
    url.username === '' &&
    url.password === ''
  )
}

/** Splits `host:port` or `[v6]:port`; undefined when malformed. */
export function parseHostPort(value: string): { host: string; port: number } | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(value.trim())
  if (!match) return undefined
  const port = Number(match[3])
  if (port > 65535) return undefined
  return { host: (match[1] ?? match[2])!, port }
}
