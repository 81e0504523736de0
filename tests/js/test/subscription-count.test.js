'use strict';
// Subscription count (reference 2.7): with the app setting on, every subscribe / unsubscribe on a
// non-presence channel sends pusher_internal:subscription_count {subscription_count: N} to all
// its subscribers; pusher-js sets channel.subscriptionCount and emits pusher:subscription_count.
const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { setup, subscribe, uniq, waitConnected, recordWire } = require('../helpers/clients');
const { nextEvent, withTimeout } = require('../helpers/timing');

/** Wait for pusher:subscription_count with the given count on a pusher-js channel. */
function countIs(channel, n, label) {
  return nextEvent(channel, 'pusher:subscription_count', `${label}: subscription_count ${n}`, (d) => d && d.subscription_count === n);
}

/** subscription_count frames a recordWire() saw for a channel, as a list of counts. */
function countsOnWire(wire, name) {
  return wire
    .filter((m) => m.event === 'pusher_internal:subscription_count' && m.channel === name)
    .map((m) => m.data.subscription_count);
}

/**
 * Subscribe `pusher` to `name` and wait for both subscription_succeeded and the
 * subscription_count `n` that the subscription causes (bound before subscribing).
 */
async function subscribeCounted(pusher, name, n, label) {
  const counted = countIs(pusher.subscribe(name), n, label); // subscribe() below reuses this channel
  const [[channel]] = await Promise.all([subscribe(pusher, name), counted]);
  return channel;
}

describe('subscription count (CLARION_APP_ENABLE_SUBSCRIPTION_COUNT=true)', () => {
  let h;
  before(async () => {
    h = await setup({ env: { CLARION_APP_ENABLE_SUBSCRIPTION_COUNT: 'true' } });
  });
  afterEach(() => h && h.disconnectAll());
  after(async () => {
    if (h) await h.close();
  });

  it('public channel: subscriptionCount follows subscribes, unsubscribes and disconnects of other clients', async () => {
    const name = uniq('counted-');
    const [a, b, c] = [h.client(), h.client(), h.client()];
    await Promise.all([a, b, c].map(waitConnected));
    const [wireA, wireB] = [recordWire(a), recordWire(b)];

    const chA = await subscribeCounted(a, name, 1, 'A alone');
    assert.equal(chA.subscriptionCount, 1);

    const aSees2 = countIs(chA, 2, 'A after B subscribed');
    const chB = await subscribeCounted(b, name, 2, 'B subscribed');
    await aSees2;
    assert.equal(chA.subscriptionCount, 2);
    assert.equal(chB.subscriptionCount, 2);

    const aSees3 = countIs(chA, 3, 'A after C subscribed');
    const bSees3 = countIs(chB, 3, 'B after C subscribed');
    const chC = await subscribeCounted(c, name, 3, 'C subscribed');
    await Promise.all([aSees3, bSees3]);
    assert.deepEqual([chA, chB, chC].map((ch) => ch.subscriptionCount), [3, 3, 3]);

    // B unsubscribes: A and C see 2; B is no longer told.
    const aSees2Again = countIs(chA, 2, 'A after B unsubscribed');
    const cSees2 = countIs(chC, 2, 'C after B unsubscribed');
    b.unsubscribe(name);
    await Promise.all([aSees2Again, cSees2]);
    await subscribe(b, uniq('sync-')); // B's frames are handled in order: anything for B came before
    assert.equal(chA.subscriptionCount, 2);
    assert.equal(chC.subscriptionCount, 2);
    assert.deepEqual(countsOnWire(wireB, name), [2, 3], 'B hears nothing after leaving');

    // C's connection closes without an unsubscribe: A sees 1.
    const aSees1 = countIs(chA, 1, 'A after C disconnected');
    c.disconnect();
    await aSees1;
    assert.equal(chA.subscriptionCount, 1);
    assert.deepEqual(countsOnWire(wireA, name), [1, 2, 3, 2, 1]);
  });

  it('private channel: counts are sent too', async () => {
    const name = uniq('private-counted-');
    const [a, b] = await Promise.all([h.connectedClient(), h.connectedClient()]);
    const chA = await subscribeCounted(a, name, 1, 'A alone');
    const aSees2 = countIs(chA, 2, 'A after B subscribed');
    const chB = await subscribeCounted(b, name, 2, 'B subscribed');
    await aSees2;
    assert.equal(chA.subscriptionCount, 2);
    assert.equal(chB.subscriptionCount, 2);
    const aSees1 = countIs(chA, 1, 'A after B unsubscribed');
    b.unsubscribe(name);
    await aSees1;
    assert.equal(chA.subscriptionCount, 1);
  });

  it('Echo: channel.listen(".pusher:subscription_count") sees the count', async () => {
    const echo = await h.echo();
    await waitConnected(echo.connector.pusher);
    const name = uniq('echo-counted-');
    const other = await h.connectedClient();
    await subscribeCounted(other, name, 1, 'first subscriber');
    const got = new Promise((resolve) => {
      echo.channel(name).listen('.pusher:subscription_count', resolve);
    });
    const data = await withTimeout(got, `pusher:subscription_count through Echo on ${name}`);
    assert.deepEqual(data, { subscription_count: 2 });
  });

  it('presence channel: no subscription_count (members carry the count)', async () => {
    const name = uniq('presence-uncounted.');
    const a = await h.connectedClient({ presence: { user_id: 'a' } });
    const b = await h.connectedClient({ presence: { user_id: 'b' } });
    const wireA = recordWire(a);
    const [chA] = await subscribe(a, name);
    const added = nextEvent(chA, 'pusher:member_added', 'member_added for b');
    await subscribe(b, name);
    await added;
    const marker = nextEvent(chA, 'marker', 'marker on A');
    await h.sdk.trigger(name, 'marker', {});
    await marker;
    assert.deepEqual(wireA.filter((m) => m.event === 'pusher_internal:subscription_count'), []);
    assert.equal(chA.subscriptionCount, undefined, 'pusher-js never set a count');
  });
});

describe('subscription count off (default)', () => {
  let h;
  before(async () => {
    h = await setup();
  });
  afterEach(() => h && h.disconnectAll());
  after(async () => {
    if (h) await h.close();
  });

  it('no subscription_count frames when the app setting is off', async () => {
    const name = uniq('uncounted-');
    const [a, b] = await Promise.all([h.connectedClient(), h.connectedClient()]);
    const wireA = recordWire(a);
    const [chA] = await subscribe(a, name);
    await subscribe(b, name);
    b.unsubscribe(name);
    await subscribe(b, uniq('sync-'));
    const marker = nextEvent(chA, 'marker', 'marker on A');
    await h.sdk.trigger(name, 'marker', {});
    await marker;
    assert.deepEqual(wireA.filter((m) => m.event === 'pusher_internal:subscription_count'), []);
    assert.equal(chA.subscriptionCount, undefined, 'pusher-js never set a count');
  });
});
