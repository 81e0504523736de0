'use strict';
// End-to-end encrypted channels. The node build of pusher-js (require('pusher-js')) is the
// with-encryption build: it bundles tweetnacl as `nacl` (see helpers/clients.js).
const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { setup, subscribe, uniq, recordWire } = require('../helpers/clients');
const { nextEvent } = require('../helpers/timing');

describe('encrypted channels (private-encrypted-)', () => {
  let h;
  before(async () => {
    h = await setup();
  });
  afterEach(() => h && h.disconnectAll());
  after(async () => {
    if (h) await h.close();
  });

  it('pusher-js has a nacl implementation (so it really decrypts)', () => {
    const pusher = h.client();
    assert.ok(pusher.config.nacl && pusher.config.nacl.secretbox, 'pusher-js node build must carry nacl');
  });

  it('SDK trigger with a master key -> pusher-js decrypts the plaintext; the wire carries only ciphertext', async () => {
    const pusher = await h.connectedClient();
    const name = uniq('private-encrypted-vault.');
    const [channel] = await subscribe(pusher, name);
    assert.equal(channel.subscribed, true);
    const wire = recordWire(pusher);

    const secret = { message: 'the eagle lands at dawn', n: 3, list: ['x', 'ÿ'] };
    const received = nextEvent(channel, 'secret-event', 'decrypted secret-event');
    const res = await h.sdk.trigger(name, 'secret-event', secret);
    assert.equal(res.status, 200);
    const [data] = await received;
    assert.deepEqual(data, secret);

    const frames = wire.filter((m) => m.event === 'secret-event');
    assert.equal(frames.length, 1);
    const onWire = frames[0].data;
    assert.equal(typeof onWire.nonce, 'string', `wire data should be {nonce, ciphertext}, got ${JSON.stringify(onWire)}`);
    assert.equal(typeof onWire.ciphertext, 'string');
    assert.equal(Buffer.from(onWire.nonce, 'base64').length, 24);
    assert.ok(!JSON.stringify(onWire).includes('eagle'), 'plaintext must not be on the wire');
  });

  it('two subscribers with their own auth both decrypt the same event', async () => {
    const [a, b] = await Promise.all([h.connectedClient(), h.connectedClient()]);
    const name = uniq('private-encrypted-shared-');
    const [[chA], [chB]] = await Promise.all([subscribe(a, name), subscribe(b, name)]);
    const got = Promise.all([nextEvent(chA, 'e', 'e on A'), nextEvent(chB, 'e', 'e on B')]);
    await h.sdk.trigger(name, 'e', { hello: 'both' });
    const [[da], [db]] = await got;
    assert.deepEqual(da, { hello: 'both' });
    assert.deepEqual(db, { hello: 'both' });
  });
});
