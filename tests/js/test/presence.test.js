'use strict';
const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { setup, subscribe, uniq, waitConnected, recordWire } = require('../helpers/clients');
const { nextEvent } = require('../helpers/timing');

const ALICE = { user_id: 'alice-1', user_info: { name: 'Alice', role: 'admin' } };
const BOB = { user_id: 'bob-2', user_info: { name: 'Bob' } };

/** Members of a pusher-js presence channel as a sorted [{id, info}] list. */
function memberList(channel) {
  const list = [];
  channel.members.each((m) => list.push({ id: m.id, info: m.info }));
  return list.sort((x, y) => (x.id < y.id ? -1 : 1));
}

describe('presence channels (pusher-js + pusher SDK)', () => {
  let h;
  before(async () => {
    h = await setup();
  });
  afterEach(() => h && h.disconnectAll());
  after(async () => {
    if (h) await h.close();
  });

  /** Ask the server (HTTP API through the SDK) what it knows about a presence channel. */
  async function serverView(name) {
    const list = await h.getJSON('/channels', { filter_by_prefix: 'presence-', info: 'user_count' });
    const users = await h.getJSON(`/channels/${name}/users`);
    const one = await h.getJSON(`/channels/${name}`, { info: 'user_count' });
    return {
      listed: list.channels[name],
      users: users.users.map((u) => u.id).sort(),
      occupied: one.occupied,
      userCount: one.user_count,
    };
  }

  /** Round-trip through the server so that everything sent to `pusher` before is delivered. */
  async function flush(pusher, channelName) {
    const channel = pusher.channel(channelName);
    const marker = `marker-${Math.random().toString(36).slice(2)}`;
    const got = nextEvent(channel, marker, `${marker} on ${channelName}`);
    await h.sdk.trigger(channelName, marker, {});
    await got;
  }

  it('members, me, member_added and member_removed between two users', async () => {
    const name = uniq('presence-room.');
    const a = h.client({ presence: ALICE });
    const b = h.client({ presence: BOB });
    await Promise.all([waitConnected(a), waitConnected(b)]);

    const [chA, successA] = await subscribe(a, name);
    assert.equal(chA.members.count, 1);
    assert.deepEqual(chA.members.me, { id: ALICE.user_id, info: ALICE.user_info });
    assert.equal(successA.count, 1);
    assert.deepEqual(successA.me, { id: ALICE.user_id, info: ALICE.user_info });

    const added = nextEvent(chA, 'pusher:member_added', 'member_added for Bob on A');
    const [chB] = await subscribe(b, name);
    assert.equal(chB.members.count, 2);
    assert.deepEqual(chB.members.me, { id: BOB.user_id, info: BOB.user_info });
    assert.deepEqual(memberList(chB), [
      { id: ALICE.user_id, info: ALICE.user_info },
      { id: BOB.user_id, info: BOB.user_info },
    ]);
    assert.deepEqual(chB.members.get(ALICE.user_id), { id: ALICE.user_id, info: ALICE.user_info });

    const [member] = await added;
    assert.deepEqual(member, { id: BOB.user_id, info: BOB.user_info });
    assert.equal(chA.members.count, 2);

    let view = await serverView(name);
    assert.deepEqual(view.listed, { user_count: 2 });
    assert.deepEqual(view.users, [ALICE.user_id, BOB.user_id].sort());
    assert.equal(view.occupied, true);
    assert.equal(view.userCount, 2);

    const removed = nextEvent(chA, 'pusher:member_removed', 'member_removed for Bob on A');
    b.disconnect();
    const [gone] = await removed;
    assert.equal(gone.id, BOB.user_id);
    assert.equal(chA.members.count, 1);
    assert.equal(chA.members.get(BOB.user_id), null);

    view = await serverView(name);
    assert.deepEqual(view.listed, { user_count: 1 });
    assert.deepEqual(view.users, [ALICE.user_id]);
  });

  it('numeric user ids from channel_data are reported as strings', async () => {
    const name = uniq('presence-numeric-');
    const a = await h.connectedClient({ presence: { user_id: 10, user_info: { name: 'Ten' } } });
    const [chA] = await subscribe(a, name);
    assert.equal(chA.members.count, 1);
    const users = await h.getJSON(`/channels/${name}/users`);
    assert.deepEqual(users.users, [{ id: '10' }]);
  });

  it('the same user on two sockets counts once; member_removed only when the last socket leaves', async () => {
    const name = uniq('presence-multi.');
    const a = h.client({ presence: ALICE });
    const b1 = h.client({ presence: BOB });
    const b2 = h.client({ presence: BOB });
    await Promise.all([a, b1, b2].map(waitConnected));

    const [chA] = await subscribe(a, name);
    const wireA = recordWire(a);
    const memberEvents = () => wireA.filter((m) => m.event.startsWith('pusher_internal:member_')).map((m) => m.event);

    const firstAdd = nextEvent(chA, 'pusher:member_added', 'member_added for Bob (first socket)');
    await subscribe(b1, name);
    await firstAdd;

    const [chB2, successB2] = await subscribe(b2, name);
    assert.equal(chB2.members.count, 2, "Bob's second socket sees two distinct users");
    assert.equal(successB2.count, 2);
    await flush(a, name);
    assert.deepEqual(memberEvents(), ['pusher_internal:member_added'], 'no member_added for a second socket of the same user');
    assert.equal(chA.members.count, 2);

    let view = await serverView(name);
    assert.deepEqual(view.listed, { user_count: 2 });
    assert.equal(view.userCount, 2);
    assert.deepEqual(view.users, [ALICE.user_id, BOB.user_id].sort());

    // Bob's first socket leaves: Bob is still present through b2.
    b1.unsubscribe(name);
    await subscribe(b1, uniq('sync-')); // processed after the unsubscribe on the same socket
    await flush(a, name);
    assert.deepEqual(memberEvents(), ['pusher_internal:member_added'], 'no member_removed while Bob still has a socket');
    assert.equal(chA.members.count, 2);
    view = await serverView(name);
    assert.deepEqual(view.listed, { user_count: 2 });
    assert.deepEqual(view.users, [ALICE.user_id, BOB.user_id].sort());

    // Bob's last socket goes away (connection closed, no unsubscribe): now he is removed.
    const removed = nextEvent(chA, 'pusher:member_removed', 'member_removed for Bob (last socket)');
    b2.disconnect();
    const [gone] = await removed;
    assert.equal(gone.id, BOB.user_id);
    assert.equal(chA.members.count, 1);
    assert.deepEqual(memberEvents(), ['pusher_internal:member_added', 'pusher_internal:member_removed']);

    view = await serverView(name);
    assert.deepEqual(view.listed, { user_count: 1 });
    assert.deepEqual(view.users, [ALICE.user_id]);
  });

  it('an empty presence channel disappears from the channel list', async () => {
    const name = uniq('presence-empty-');
    const a = await h.connectedClient({ presence: ALICE });
    await subscribe(a, name);
    assert.deepEqual((await serverView(name)).listed, { user_count: 1 });
    a.unsubscribe(name);
    await subscribe(a, uniq('sync-'));
    const list = await h.getJSON('/channels', { filter_by_prefix: 'presence-', info: 'user_count' });
    assert.equal(list.channels[name], undefined);
    const one = await h.getJSON(`/channels/${name}`, {});
    assert.equal(one.occupied, false);
  });
});
