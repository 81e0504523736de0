'use strict';
// User authentication (pusher:signin, reference 3.2) and server-to-user events (2.10), with
// user_data signed by the pusher SDK's authenticateUser(). Not part of the original brief's
// list; marked `todo` while Clarion has no pusher:signin support, so they run and report but do
// not fail the suite. Drop the `todo` once signin lands.
const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { setup, waitConnected, recordWire } = require('../helpers/clients');
const { nextEvent } = require('../helpers/timing');

const TODO = { todo: 'Clarion does not implement pusher:signin yet (reference 3.2 / 2.10)' };

describe('user authentication (pusher.signin) and sendToUser', () => {
  let h;
  before(async () => {
    h = await setup();
  });
  afterEach(() => h && h.disconnectAll());
  after(async () => {
    if (h) await h.close();
  });

  /** Sign in and wait until the #server-to-user-<id> channel is subscribed. */
  async function signedIn(user) {
    const pusher = h.client({ user });
    await waitConnected(pusher);
    const ready = nextEvent(
      pusher.connection,
      'message',
      `subscription to #server-to-user-${user.id}`,
      (m) => m.event === 'pusher_internal:subscription_succeeded' && m.channel === `#server-to-user-${user.id}`
    );
    pusher.signin();
    await ready;
    assert.equal(pusher.user.user_data.id, user.id);
    return pusher;
  }

  it('signin succeeds and sendToUser reaches every socket of that user only', TODO, async () => {
    const alice = { id: 'alice', user_info: { name: 'Alice' } };
    const bob = { id: 'bob' };
    const [a1, a2, b] = await Promise.all([signedIn(alice), signedIn(alice), signedIn(bob)]);
    const wireB = recordWire(b);

    const got = Promise.all([
      nextEvent(a1.user, 'notice', 'notice on alice #1'),
      nextEvent(a2.user, 'notice', 'notice on alice #2'),
    ]);
    await h.sdk.sendToUser('alice', 'notice', { text: 'hi alice' });
    const [[d1], [d2]] = await got;
    assert.deepEqual(d1, { text: 'hi alice' });
    assert.deepEqual(d2, { text: 'hi alice' });

    const marker = nextEvent(b.user, 'marker', 'marker on bob');
    await h.sdk.sendToUser('bob', 'marker', {});
    await marker;
    assert.deepEqual(wireB.filter((m) => m.event === 'notice'), []);
  });

  it('a bad user signature is refused with pusher:error; a good one still works', TODO, async () => {
    const pusher = h.client({
      // user_data altered after signing
      authenticate: (socketId) => {
        const signed = h.sdk.authenticateUser(socketId, { id: 'mallory' });
        return { auth: signed.auth, user_data: JSON.stringify({ id: 'admin' }) };
      },
    });
    await waitConnected(pusher);
    const wire = recordWire(pusher);
    const answer = nextEvent(
      pusher.connection,
      'message',
      'answer to a tampered pusher:signin',
      (m) => m.event === 'pusher:error' || m.event === 'pusher:signin_success'
    );
    pusher.signin();
    const [msg] = await answer;
    assert.equal(msg.event, 'pusher:error', JSON.stringify(wire));
    assert.equal(pusher.user.user_data, null);

    // signin is really implemented: a correctly signed user gets in
    await signedIn({ id: 'alice' });
  });
});
