'use strict';
const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { setup, subscribe, uniq, waitConnected, sdkAuthorize } = require('../helpers/clients');
const { nextEvent } = require('../helpers/timing');

describe('private channels (pusher-js, auth signed by the pusher SDK)', () => {
  let h;
  before(async () => {
    h = await setup();
  });
  afterEach(() => h && h.disconnectAll());
  after(async () => {
    if (h) await h.close();
  });

  it('subscribes with SDK auth and receives a triggered event', async () => {
    const pusher = await h.connectedClient();
    const name = uniq('private-orders.');
    const [channel] = await subscribe(pusher, name);
    assert.equal(channel.subscribed, true);

    const received = nextEvent(channel, 'App\\Events\\OrderShipped', 'event on the private channel');
    await h.sdk.trigger(name, 'App\\Events\\OrderShipped', { order: { id: 7 } });
    const [data] = await received;
    assert.deepEqual(data, { order: { id: 7 } });
  });

  /**
   * A client whose auth is deliberately wrong for channels named "private-bad-…", and
   * correct (SDK-signed) for everything else.
   */
  function clientWithBadAuth(makeBad) {
    return h.client({
      authorize: (socketId, channelName) =>
        channelName.startsWith('private-bad-') ? makeBad(socketId, channelName) : sdkAuthorize(h.sdk, socketId, channelName),
    });
  }

  async function expectRejectedThenRecover(pusher, badName) {
    const socketId = await waitConnected(pusher);
    const errors = [];
    pusher.connection.bind('state_change', (s) => errors.push(`state ${s.previous} -> ${s.current}`));

    const bad = pusher.subscribe(badName);
    let succeeded = false;
    bad.bind('pusher:subscription_succeeded', () => {
      succeeded = true;
    });
    const [err] = await nextEvent(bad, 'pusher:subscription_error', `pusher:subscription_error on ${badName}`);
    assert.ok(err && typeof err === 'object', `subscription_error data should be an object, got ${JSON.stringify(err)}`);
    assert.equal(succeeded, false);
    assert.equal(bad.subscribed, false);

    // The socket stays open: same socket, and a correctly signed subscription still works on it.
    const goodName = uniq('private-good-');
    const [good] = await subscribe(pusher, goodName);
    assert.equal(good.subscribed, true);
    assert.equal(pusher.connection.state, 'connected');
    assert.equal(pusher.connection.socket_id, socketId, 'connection must not have been replaced');
    assert.deepEqual(errors, [], 'no connection state change expected');

    const received = nextEvent(good, 'ping-good', 'event on the good channel');
    await h.sdk.trigger(goodName, 'ping-good', { ok: 1 });
    assert.deepEqual((await received)[0], { ok: 1 });
    return err;
  }

  it('bad signature -> pusher:subscription_error on the channel; the connection stays up', async () => {
    const pusher = clientWithBadAuth(() => ({ auth: `${h.app.key}:${'0'.repeat(64)}` }));
    const err = await expectRejectedThenRecover(pusher, uniq('private-bad-'));
    // soketi's shape (reference 2.5), which Clarion chose: {type: 'AuthError', error, status}
    assert.equal(err.type, 'AuthError');
    assert.equal(typeof err.error, 'string');
  });

  it('a valid signature for another socket_id is rejected', async () => {
    const pusher = clientWithBadAuth((socketId, channelName) => h.sdk.authorizeChannel('1234.5678', channelName));
    await expectRejectedThenRecover(pusher, uniq('private-bad-othersocket-'));
  });

  it('a signature made with the right secret but another app key prefix is rejected', async () => {
    const pusher = clientWithBadAuth((socketId, channelName) => {
      const { auth } = h.sdk.authorizeChannel(socketId, channelName);
      return { auth: `not-the-key:${auth.split(':')[1]}` };
    });
    await expectRejectedThenRecover(pusher, uniq('private-bad-key-'));
  });

  it('a signature for another channel name is rejected', async () => {
    const pusher = clientWithBadAuth((socketId, channelName) => h.sdk.authorizeChannel(socketId, `${channelName}-x`));
    await expectRejectedThenRecover(pusher, uniq('private-bad-name-'));
  });
});
