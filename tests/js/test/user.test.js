'use strict';
// User authentication (pusher:signin, reference 3.2), server-to-user events (2.10), watchlist
// events (3.3) and terminating a user's connections (3.4), with user_data signed by the pusher
// SDK's authenticateUser() and pusher-js's own user / watchlist facades on the browser side.
const crypto = require('node:crypto');
const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { setup, subscribe, uniq, waitConnected, recordWire } = require('../helpers/clients');
const { nextEvent, withTimeout } = require('../helpers/timing');

/**
 * Sign a pusher-js client in (its `user` option must be set) and wait until the
 * #server-to-user-<id> channel is subscribed, i.e. the whole pusher-js signin flow is done.
 */
async function signIn(pusher, userId) {
  await waitConnected(pusher);
  const ready = nextEvent(
    pusher.connection,
    'message',
    `subscription to #server-to-user-${userId}`,
    (m) => m.event === 'pusher_internal:subscription_succeeded' && m.channel === `#server-to-user-${userId}`
  );
  pusher.signin();
  await ready;
  assert.equal(pusher.user.user_data.id, userId);
  return pusher;
}

/**
 * Record every watchlist event pusher-js emits on `pusher.user.watchlist` (bind before signin).
 * Returns the live array of {name, user_ids}.
 */
function recordWatchlist(pusher) {
  const seen = [];
  for (const name of ['online', 'offline']) {
    pusher.user.watchlist.bind(name, (ev) => seen.push({ name: ev.name, user_ids: ev.user_ids }));
  }
  return seen;
}

/** Wait for the next watchlist event `name` on a pusher-js client (optionally matching). */
function nextWatch(pusher, name, label, predicate = () => true) {
  return nextEvent(pusher.user.watchlist, name, label, predicate);
}

/** Round trip through the server: a sendToUser marker reaches a signed-in pusher-js client. */
async function flushUser(h, pusher, userId) {
  const marker = `marker-${crypto.randomBytes(4).toString('hex')}`;
  const got = nextEvent(pusher.user, marker, `${marker} for ${userId}`);
  await h.sdk.sendToUser(userId, marker, {});
  await got;
}

/**
 * Resolve once a pusher-js client has given up: state 'disconnected' or 'failed'. Also collects
 * every connection 'error' it emitted. Resolves with {state, errors}.
 *
 * pusher-js answers a server close with a 40xx code by calling close() on the already closed
 * faye-websocket client, which arms faye's 30 s close timer and never clears it: the test process
 * would then linger 30 s after the last test. The timer's callback is a no-op on a closed socket,
 * so it is cleared here once the client has given up.
 */
function waitGivenUp(pusher, label) {
  const errors = [];
  const transport = pusher.connection.connection && pusher.connection.connection.transport;
  const socket = transport && transport.socket;
  pusher.connection.bind('error', (err) => errors.push(err));
  const p = new Promise((resolve) => {
    const check = () => {
      const s = pusher.connection.state;
      if (s === 'disconnected' || s === 'failed') {
        pusher.connection.unbind('state_change', check);
        resolve({ state: s, errors });
      }
    };
    pusher.connection.bind('state_change', check);
  });
  return withTimeout(p, label).then((result) => {
    // disconnect() closes the transport before changing the state; the timer exists by now.
    if (socket && socket._closeTimer) clearTimeout(socket._closeTimer);
    return result;
  });
}

describe('user authentication (pusher.signin) and sendToUser', () => {
  let h;
  before(async () => {
    h = await setup();
  });
  afterEach(() => h && h.disconnectAll());
  after(async () => {
    if (h) await h.close();
  });

  /** A fresh pusher-js client signed in as `user`. */
  async function signedIn(user) {
    return signIn(h.client({ user }), user.id);
  }

  it('signin succeeds and sendToUser reaches every socket of that user only', async () => {
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

  it('a bad user signature is refused with pusher:error; a good one still works', async () => {
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
    assert.equal(msg.data.code, 4009, `signin failure code: ${JSON.stringify(msg.data)}`);
    assert.equal(pusher.user.user_data, null);

    // The refusal does not close the socket, and the socket is not 'admin': events for admin
    // do not reach it (proved by a trigger on a channel it is subscribed to, sent afterwards).
    const name = uniq('after-bad-signin-');
    const [channel] = await subscribe(pusher, name);
    await h.sdk.sendToUser('admin', 'for-admin', {});
    const marker = nextEvent(channel, 'marker', 'marker after a refused signin');
    await h.sdk.trigger(name, 'marker', {});
    await marker;
    assert.equal(pusher.connection.state, 'connected');
    assert.deepEqual(wire.filter((m) => m.event === 'for-admin'), []);

    // signin is really implemented: a correctly signed user gets in
    await signedIn({ id: 'alice' });
  });

  it('a socket not signed in as X cannot subscribe to #server-to-user-X (raw pusher:subscribe)', async () => {
    const victim = await signedIn({ id: uniq('victim-') });
    const victimId = victim.user.user_data.id;
    // pusher-js refuses '#' channel names itself; a hostile page can still send the frame.
    const intruder = await h.connectedClient({ user: { id: uniq('intruder-') } });
    const wire = recordWire(intruder);
    const answer = nextEvent(
      intruder.connection,
      'message',
      'answer to a subscribe to someone else\'s #server-to-user channel',
      (m) =>
        m.channel === `#server-to-user-${victimId}` &&
        (m.event === 'pusher:subscription_error' || m.event === 'pusher_internal:subscription_succeeded')
    );
    intruder.send_event('pusher:subscribe', { auth: '', channel: `#server-to-user-${victimId}` });
    const [msg] = await answer;
    assert.equal(msg.event, 'pusher:subscription_error', JSON.stringify(msg));
    assert.equal(msg.data.status, 401, JSON.stringify(msg.data));

    // sendToUser(victim) reaches the victim only
    const got = nextEvent(victim.user, 'secret', 'secret on the victim');
    await h.sdk.sendToUser(victimId, 'secret', { pin: 1234 });
    await got;
    const name = uniq('sync-');
    const [channel] = await subscribe(intruder, name);
    const marker = nextEvent(channel, 'marker', 'marker on the intruder');
    await h.sdk.trigger(name, 'marker', {});
    await marker;
    assert.deepEqual(wire.filter((m) => m.event === 'secret'), []);
    assert.equal(intruder.connection.state, 'connected');
  });

  it('a signed-in user joins a presence channel without channel_data: the signed-in id and user_info are the member', async () => {
    const aliceId = uniq('member-alice-');
    const room = uniq('presence-signed.');
    const observer = await h.connectedClient({ presence: { user_id: 'observer', user_info: { role: 'watcher' } } });
    const [roomObs] = await subscribe(observer, room);

    const alice = h.client({
      user: { id: aliceId, user_info: { name: 'Alice' } },
      // an app server that relies on signin signs only <socket_id>:<channel>, no channel_data
      authorize: (socketId, channelName) => h.sdk.authorizeChannel(socketId, channelName),
    });
    await signIn(alice, aliceId);
    const added = nextEvent(roomObs, 'pusher:member_added', 'member_added for the signed-in user');
    const [chAlice, success] = await subscribe(alice, room);
    const [member] = await added;
    assert.deepEqual(member, { id: aliceId, info: { name: 'Alice' } });
    assert.deepEqual(chAlice.members.me, { id: aliceId, info: { name: 'Alice' } });
    assert.equal(success.count, 2);
    const users = await h.getJSON(`/channels/${room}/users`);
    assert.deepEqual(users.users.map((u) => u.id).sort(), [aliceId, 'observer'].sort());
  });

  it('watchlist: online at signin, online when a watched user signs in, offline when their last socket goes', async () => {
    const ids = {
      bob: uniq('w-bob-'),
      carol: uniq('w-carol-'),
      dave: uniq('w-dave-'),
      erin: String(100000 + crypto.randomInt(900000)), // a numeric id, watched as a number
      watcher: uniq('w-watcher-'),
    };
    const syncRoom = uniq('presence-sync.');

    // Online before the watcher signs in: bob (two sockets) and erin. Dave is only a presence
    // member (not signed in), which does not make him online. Carol is not connected.
    const b1 = h.client({ user: { id: ids.bob }, presence: { user_id: 'sync-b1' } });
    const b2 = h.client({ user: { id: ids.bob } });
    const e = h.client({ user: { id: ids.erin } });
    const d = h.client({ presence: { user_id: ids.dave } });
    await Promise.all([signIn(b1, ids.bob), signIn(b2, ids.bob), signIn(e, ids.erin), waitConnected(d)]);
    await subscribe(d, syncRoom);
    await subscribe(b1, syncRoom);

    const watcher = h.client({
      user: { id: ids.watcher, watchlist: [ids.carol, ids.bob, ids.dave, Number(ids.erin)] },
      presence: { user_id: ids.watcher },
    });
    await waitConnected(watcher);
    const events = recordWatchlist(watcher);
    const initial = nextWatch(watcher, 'online', 'initial watchlist online event');
    await signIn(watcher, ids.watcher);
    const [first] = await initial;
    assert.equal(first.name, 'online');
    assert.deepEqual([...first.user_ids].sort(), [ids.bob, ids.erin].sort(), 'online at signin: the signed-in watched users');

    // carol signs in later
    const carolOnline = nextWatch(watcher, 'online', 'online for carol', (ev) => ev.user_ids.includes(ids.carol));
    const c = h.client({ user: { id: ids.carol } });
    await signIn(c, ids.carol);
    const [onCarol] = await carolOnline;
    assert.deepEqual(onCarol.user_ids, [ids.carol]);

    // a second socket for carol is not a new "online"
    await signIn(h.client({ user: { id: ids.carol } }), ids.carol);

    // bob's first socket goes: bob is still online through b2. The watcher sees b1's presence
    // member leave, which proves the server processed b1's close; the marker flushes the rest.
    const [syncCh] = await subscribe(watcher, syncRoom);
    const b1Gone = nextEvent(syncCh, 'pusher:member_removed', 'member_removed for bob\'s first socket', (m) => m.id === 'sync-b1');
    b1.disconnect();
    await b1Gone;
    await flushUser(h, watcher, ids.watcher);
    assert.deepEqual(events.filter((ev) => ev.name === 'offline'), [], 'no offline while bob still has a signed-in socket');

    // bob's last socket goes
    const bobOffline = nextWatch(watcher, 'offline', 'offline for bob');
    b2.disconnect();
    const [offBob] = await bobOffline;
    assert.deepEqual(offBob.user_ids, [ids.bob]);

    // dave (presence only) leaving is no watchlist event either
    const daveGone = nextEvent(syncCh, 'pusher:member_removed', 'member_removed for dave', (m) => m.id === ids.dave);
    d.disconnect();
    await daveGone;
    await flushUser(h, watcher, ids.watcher);

    assert.deepEqual(
      events.map((ev) => ({ name: ev.name, user_ids: [...ev.user_ids].sort() })),
      [
        { name: 'online', user_ids: [ids.bob, ids.erin].sort() },
        { name: 'online', user_ids: [ids.carol] },
        { name: 'offline', user_ids: [ids.bob] },
      ]
    );
  });

  it('watchlist: a user who is not watched going online or offline sends nothing', async () => {
    const watcherId = uniq('quiet-watcher-');
    const watcher = h.client({ user: { id: watcherId, watchlist: [uniq('nobody-')] }, presence: { user_id: watcherId } });
    await waitConnected(watcher);
    const events = recordWatchlist(watcher);
    const initial = nextWatch(watcher, 'online', 'initial (empty) online event');
    await signIn(watcher, watcherId);
    const [first] = await initial;
    assert.deepEqual(first.user_ids, [], 'the initial online event is sent even when nobody watched is online');

    // A stranger (not watched) signs in and leaves. The watcher shares a presence room with the
    // stranger's socket, so member_removed proves the server has processed that close.
    const room = uniq('presence-quiet.');
    const [roomW] = await subscribe(watcher, room);
    const strangerId = uniq('stranger-');
    const stranger = h.client({ user: { id: strangerId }, presence: { user_id: strangerId } });
    await signIn(stranger, strangerId);
    await subscribe(stranger, room);
    const left = nextEvent(roomW, 'pusher:member_removed', 'member_removed for the stranger', (m) => m.id === strangerId);
    stranger.disconnect();
    await left;
    await flushUser(h, watcher, watcherId);
    assert.deepEqual(events, [{ name: 'online', user_ids: [] }]);
  });

  it('terminateUserConnections closes every socket of that user (close 4009, no reconnect); others stay', async () => {
    const aliceId = uniq('term-alice-');
    const bobId = uniq('term-bob-');
    const room = uniq('presence-term.');
    const a1 = h.client({ user: { id: aliceId } });
    const a2 = h.client({ user: { id: aliceId } });
    const b = h.client({ user: { id: bobId } });
    // Same user id but only as a presence member, never signed in: must be left alone.
    const presenceOnly = h.client({ presence: { user_id: aliceId } });
    await Promise.all([signIn(a1, aliceId), signIn(a2, aliceId), signIn(b, bobId), waitConnected(presenceOnly)]);
    const [roomCh] = await subscribe(presenceOnly, room);

    const states = { a1: [], a2: [] };
    a1.connection.bind('state_change', (s) => states.a1.push(s.current));
    a2.connection.bind('state_change', (s) => states.a2.push(s.current));
    const gone = [waitGivenUp(a1, 'alice socket #1 to give up'), waitGivenUp(a2, 'alice socket #2 to give up')];
    const wires = [recordWire(a1), recordWire(a2)];

    const res = await withTimeout(h.sdk.terminateUserConnections(aliceId), 'terminateUserConnections');
    assert.equal(res.status, 200);
    const results = await Promise.all(gone);

    results.forEach(({ state, errors }, i) => {
      assert.ok(state === 'disconnected' || state === 'failed', `alice socket #${i + 1} ended in ${state}`);
      // pusher-js reports the close code as a WebSocketError wrapping {code} (the pusher:error
      // frame alone gives a bare PusherError): this is the close code itself.
      const closeCodes = errors.filter((err) => err.type === 'WebSocketError').map((err) => err.error && err.error.data && err.error.data.code);
      assert.deepEqual(closeCodes, [4009], `alice socket #${i + 1}: close code; errors ${JSON.stringify(errors)}`);
      const frames = wires[i].filter((m) => m.event === 'pusher:error');
      assert.ok(
        frames.some((m) => m.data && m.data.code === 4009),
        `alice socket #${i + 1}: expected a pusher:error 4009 frame, got ${JSON.stringify(wires[i])}`
      );
    });

    // bob and the presence-only socket are still connected and still receive events. These round
    // trips also give pusher-js time to act on the close; it must not have started reconnecting.
    const toBob = nextEvent(b.user, 'still-there', 'sendToUser to bob after terminating alice');
    await h.sdk.sendToUser(bobId, 'still-there', {});
    await toBob;
    const toRoom = nextEvent(roomCh, 'still-there', 'event for the presence-only socket');
    await h.sdk.trigger(room, 'still-there', {});
    await toRoom;
    assert.equal(b.connection.state, 'connected');
    assert.equal(presenceOnly.connection.state, 'connected');
    for (const [k, list] of Object.entries(states)) {
      assert.ok(!list.includes('connecting'), `${k} must not reconnect after close 4009: states ${JSON.stringify(list)}`);
      assert.ok(['disconnected', 'failed'].includes(list[list.length - 1]), `${k} states ${JSON.stringify(list)}`);
    }
  });
});

describe('watchlist limit (CLARION_APP_MAX_WATCHLIST_SIZE=2)', () => {
  let h;
  before(async () => {
    h = await setup({ env: { CLARION_APP_MAX_WATCHLIST_SIZE: '2' } });
  });
  afterEach(() => h && h.disconnectAll());
  after(async () => {
    if (h) await h.close();
  });

  it('over the limit: pusher:error 4302, signin still succeeds, only the first 2 ids are watched', async () => {
    const [x1, x2, x3] = [uniq('x1-'), uniq('x2-'), uniq('x3-')];
    const watcherId = uniq('limited-watcher-');
    await signIn(h.client({ user: { id: x1 } }), x1);

    const watcher = h.client({ user: { id: watcherId, watchlist: [x1, x2, x3] } });
    await waitConnected(watcher);
    const events = recordWatchlist(watcher);
    const wire = recordWire(watcher);
    const limitError = nextEvent(watcher.connection, 'error', 'pusher:error 4302', (err) => err && err.data && err.data.code === 4302);
    const initial = nextWatch(watcher, 'online', 'initial online event');
    await signIn(watcher, watcherId);
    const [[err], [first]] = await Promise.all([limitError, initial]);
    assert.equal(err.type, 'PusherError');
    assert.equal(watcher.user.user_data.id, watcherId, 'signin succeeded despite the oversized watchlist');
    assert.deepEqual(first.user_ids, [x1]);

    // x3 is beyond the limit: its signin is no event; x2 is within it.
    await signIn(h.client({ user: { id: x3 } }), x3);
    const x2Online = nextWatch(watcher, 'online', 'online for x2', (ev) => ev.user_ids.includes(x2));
    await signIn(h.client({ user: { id: x2 } }), x2);
    await x2Online;
    await flushUser(h, watcher, watcherId);
    assert.deepEqual(events, [
      { name: 'online', user_ids: [x1] },
      { name: 'online', user_ids: [x2] },
    ]);
    assert.equal(watcher.connection.state, 'connected', '4302 must not close the socket');
    assert.equal(wire.filter((m) => m.event === 'pusher:error').length, 1, JSON.stringify(wire));
  });

  it('at the limit: no pusher:error', async () => {
    const watcherId = uniq('ok-watcher-');
    const watcher = h.client({ user: { id: watcherId, watchlist: [uniq('y1-'), uniq('y2-')] } });
    await waitConnected(watcher);
    const wire = recordWire(watcher);
    const initial = nextWatch(watcher, 'online', 'initial online event');
    await signIn(watcher, watcherId);
    await initial;
    await flushUser(h, watcher, watcherId);
    assert.deepEqual(wire.filter((m) => m.event === 'pusher:error'), []);
  });
});
