import t from 'tap'
import { parseDuration, parseSize } from '../../src/config/units.js'

t.test('durations', async (t) => {
  const cases: [string | number, number | undefined][] = [
    ['250ms', 250],
    ['30s', 30_000],
    ['1.5s', 1500],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['7d', 604_800_000],
    [' 10S ', 10_000],
    [1500, 1500],
    ['', undefined],
    ['5', undefined],
    ['5 years', undefined],
    ['-1s', undefined],
    [-5, undefined],
    [Number.NaN, undefined],
  ]
  for (const [input, expected] of cases) t.equal(parseDuration(input), expected, JSON.stringify(input))
})

t.test('sizes', async (t) => {
  const cases: [string | number, number | undefined][] = [
    ['32MiB', 32 * 1024 * 1024],
    ['64KiB', 65_536],
    ['1GB', 1e9],
    ['512b', 512],
    ['100', 100],
    [4096, 4096],
    [1.5, undefined],
    ['lots', undefined],
    ['5 MiB', 5 * 1024 * 1024],
  ]
  for (const [input, expected] of cases) t.equal(parseSize(input), expected, JSON.stringify(input))
})
