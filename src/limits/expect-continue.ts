import type { IncomingMessage } from 'node:http'

/**
 * Whether the client waits for `100 Continue` before sending its body (node emits
 * `checkContinue` for exactly these requests). Whoever accepts the body sends it.
 */
export function expectsContinue(req: IncomingMessage): boolean {
  const expect = req.headers.expect
  return expect !== undefined && req.httpVersionMajor === 1 && req.httpVersionMinor >= 1 && expect.toLowerCase() === '100-continue'
}
