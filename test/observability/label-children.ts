import t from 'tap'
import { LabelChildren } from '../../src/observability/label-children.js'

t.test('a child is created once per combination of label values, in label order', async (t) => {
  const created: string[][] = []
  const children = new LabelChildren(3, (values) => {
    created.push(values)
    return { values }
  })
  const a = children.get('generate', 'i0', '2xx')
  t.equal(children.get('generate', 'i0', '2xx'), a, 'found again, not created')
  t.not(children.get('generate', 'i1', '2xx'), a)
  t.not(children.get('i0', 'generate', '2xx'), a, 'order matters')
  t.same(created, [['generate', 'i0', '2xx'], ['generate', 'i1', '2xx'], ['i0', 'generate', '2xx']])
  const one = new LabelChildren(1, (values) => values.join())
  t.equal(one.get('x'), 'x')
  const five = new LabelChildren(5, (values) => values.join('|'))
  t.equal(five.get('a', 'b', 'c', 'd', 'e'), 'a|b|c|d|e')
  const six = new LabelChildren(6, (values) => values.join('|'))
  t.equal(six.get('a', 'b', 'c', 'd', 'e', 'f'), 'a|b|c|d|e|f')
  t.equal(six.get('a', 'b', 'c', 'd', 'e', 'f'), 'a|b|c|d|e|f', 'found again')
  t.not(six.get('a', 'b', 'c', 'd', 'e', 'g'), six.get('a', 'b', 'c', 'd', 'e', 'f'))
  t.throws(() => new LabelChildren(7, () => 0), RangeError)
})
