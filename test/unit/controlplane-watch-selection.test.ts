// The filtered watch's one decision, as a table: what a store event becomes for a client whose
// selection the object was in (or not) before and is in (or not) after.
import t from 'tap';
import { selectionEventType } from '../../src/controlplane/api/watch.js';

t.test('after a list: entering is ADDED, leaving is DELETED, outside is nothing', async (t) => {
  t.equal(selectionEventType('ADDED', false, true, false), 'ADDED');
  t.equal(selectionEventType('ADDED', false, false, false), undefined);
  t.equal(selectionEventType('MODIFIED', true, true, false), 'MODIFIED');
  t.equal(selectionEventType('MODIFIED', false, true, false), 'ADDED', 'labels changed into the selection');
  t.equal(selectionEventType('MODIFIED', true, false, false), 'DELETED', 'labels changed out of the selection');
  t.equal(selectionEventType('MODIFIED', false, false, false), undefined);
  t.equal(selectionEventType('DELETED', true, false, false), 'DELETED');
  t.equal(selectionEventType('DELETED', false, false, false), undefined, 'a delete of an object the client never saw');
});

t.test('resumed from a revision: what matched before is unknown', async (t) => {
  t.equal(selectionEventType('MODIFIED', false, true, true), 'MODIFIED', 'the client may hold it');
  t.equal(selectionEventType('ADDED', false, true, true), 'ADDED');
  t.equal(selectionEventType('DELETED', false, false, true), 'DELETED', 'sent: the client may hold it');
  t.equal(selectionEventType('MODIFIED', false, false, true), undefined, 'a move out is not reported (README)');
});
