import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Backend } from '../../src/backend/backend.ts';
import { releasingOnError } from '../../src/backend/release-on-error.ts';

const backend = (log: string[], name: string, fails = false) =>
  ({
    release: () => {
      log.push(`release ${name}`);
      if (fails) throw new Error(`${name} could not be released`);
    },
  }) as unknown as Backend;

test('a load that fails frees the backends made so far and reports its own error; one that succeeds frees nothing', () => {
  const log: string[] = [];
  const made = [backend(log, 'target')];
  assert.equal(
    releasingOnError(
      () => made,
      () => 7,
    ),
    7,
  );
  assert.deepEqual(log, []);
  assert.throws(
    () =>
      releasingOnError(
        () => made,
        () => {
          made.unshift(backend(log, 'draft', true));
          throw new Error('the draft has another vocabulary');
        },
      ),
    (e: Error) =>
      /the draft has another vocabulary/.test(e.message) &&
      /could not be released/.test(String((e.cause as AggregateError).errors[0])),
    'the load error, the failed release attached',
  );
  assert.deepEqual(log, ['release draft', 'release target'], 'a failed release does not stop the others');
});
