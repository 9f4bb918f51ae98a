/** Renderings of hot vectors: reused while the stored value is the same, never for another value. */
import t from 'tap'
import { RenderedVectors } from '../../src/cache/rendered-vectors.js'
import { StoredVector } from '../../src/cache/vector-codec.js'

const stored = (numbers: number[]): Buffer => StoredVector.fromNumbers(numbers, 1, true).encode()!

t.test('a hit reuses the rendering of the same stored value, and renders anew for a new one', async (t) => {
  const rendered = new RenderedVectors(1024 * 1024)
  const value = stored([0.5, -0.25, 0.125])
  const first = rendered.json('k', StoredVector.decode(value)!)
  t.equal(first.toString(), '[0.5,-0.25,0.125]')
  const copy = Buffer.from(value)
  t.equal(rendered.json('k', StoredVector.decode(copy)!), first, 'an equal value read again (another buffer): the kept rendering')
  value.fill(0, 8) // the buffer the rendering came from changes (a slab reused): the rendering is not tied to it
  t.equal(rendered.json('k', StoredVector.decode(copy)!), first, 'the kept rendering compares against its own copy')
  const other = rendered.json('k', StoredVector.decode(stored([1, 2, 3]))!)
  t.equal(other.toString(), '[1,2,3]', 'another value under the same key is rendered, not served the old text')
  t.ok(rendered.bytes > 0)
})

t.test('with no room, every hit renders', async (t) => {
  const rendered = new RenderedVectors(0)
  const v = StoredVector.decode(stored([0.1]))!
  t.not(rendered.json('k', v), rendered.json('k', v))
  t.equal(rendered.bytes, 0)
})
