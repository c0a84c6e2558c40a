import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findByIdPrefix } from '../../src/core/id-prefix';
import { isCorralError } from '../../src/core/errors';

test('exact id, unique prefix, none, ambiguous', () => {
  const view = new Map([['abc1', { id: 'abc1' }], ['abd2', { id: 'abd2' }], ['ab', { id: 'ab' }]]);
  assert.equal(findByIdPrefix(view, 'ab', 'container')?.id, 'ab', 'an exact id wins over longer ids with that prefix');
  assert.equal(findByIdPrefix(view, 'abc', 'container')?.id, 'abc1');
  assert.equal(findByIdPrefix(view, 'zz', 'container'), undefined);
  assert.equal(findByIdPrefix(view, '', 'container'), undefined);
  assert.throws(() => findByIdPrefix(new Map([['x1', { id: 'x1' }], ['x2', { id: 'x2' }]]), 'x', 'pod sandbox'), (e) => isCorralError(e, 'InvalidArgument') && /pod sandbox id prefix "x" is ambiguous/.test((e as Error).message));
});
