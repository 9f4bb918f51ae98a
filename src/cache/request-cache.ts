import type { Exchange } from '../http/exchange.js'

/** Relays an exchange to an instance and its answer to the client. */
export type Forward = (exchange: Exchange) => Promise<void>

/**
 * The cache's place on the request path: every proxied request passes through `handle` once its
 * body is read and parsed (`exchange.json`, `exchange.model`), and `handle` answers from the
 * cache or calls `forward` (capturing the answer if it wants to keep it). The proxy knows
 * nothing else about caching.
 */
export interface RequestCache {
  handle(exchange: Exchange, forward: Forward): Promise<void>
}

/** No caching: every request goes to an instance. */
export const passThroughCache: RequestCache = {
  handle: (exchange, forward) => forward(exchange),
}
