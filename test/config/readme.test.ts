import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { renderMarkdown } from '../../src/config/template';

test('the README configuration reference matches the schema', () => {
  const readme = readFileSync(path.join(__dirname, '..', '..', '..', 'README.md'), 'utf8');
  const m = /<!-- config-reference:start[^\n]*-->\n([\s\S]*?)<!-- config-reference:end -->/.exec(readme);
  assert.ok(m, 'README has the config reference markers');
  assert.equal(m[1], renderMarkdown(), 'regenerate with: corral config --default --markdown');
});
