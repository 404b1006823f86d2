"""The dataspace on Zenoh, seen from this process as one syndicate-py entity.

``ZenohDataspace`` is a local proxy: actors publish, retract, send and sync to its ref
exactly as to an in-process ``Dataspace`` or a server's dataspace through the protocol
client, and it carries each event over a Zenoh session:

* ``on_publish(value)``: a liveliness token whose key holds the value (``keys.py``). Keys
  are unique per handle, so two handles asserting equal values are two tokens (a bag),
  and a token vanishes with its session: a crashed process's facts go by themselves.
* ``on_publish(<Observe pattern #:observer>)``: an *interest* in the narrowest key
  expression the pattern allows: a liveliness subscriber (every change from now), a
  *replay query* asking every session for its tokens under the key expression (the
  tokens alive now; see "Replay" below) and a subscriber for messages. What they deliver
  is asserted,
  retracted and sent into a local ``Dataspace`` entity (the *mirror*), where the observer
  is registered: the package's own index does the exact matching, capture counting and
  replay. Observers whose patterns give the same key expression share one interest.
* ``on_message(value)``: a publication (``put``) whose payload is the value; consecutive
  messages to one key in one outbound burst share one put (a *batch*, ``batch.py``).
  Received, a message is decoded and sent into the mirror; with a ``json_depth`` (a
  classic space's proxy) its dictionary fields are read straight into JSON for the
  agents' inboxes (``_Interest.deliver``).
* ``on_sync(peer)``: answered once the Zenoh router has seen everything this session did
  before: a liveliness query (ordered after our declarations) and, if we published since
  the last one was answered, a query (ordered after our publications), both answered by
  the router, plus replay queries in flight and any large value still being fetched for
  an interest. Syncs arriving together share these queries. Our own tokens and messages reach our own interests inside
  the call that made them, so by then local observers have been told too.

Replay. Zenoh's own liveliness history costs O(N) per token in the receiving session
(10,000 tokens: ~2 s), so every proxy answers replay queries (``<ns>/r/<session>``) from
its own table of tokens, and holds a presence token (``<ns>/s/<session>``) that every
proxy watches (with Zenoh's history: one token per session). A session appearing (new,
or back after a router restart) is asked for its tokens by every interest; a session
going (or our router) takes its tokens with it (Zenoh tells a subscriber only of the
tokens it announced to it). A token seen to go is not revived by a later answer
(``_Interest.deleted``) until its session appears again.

An interest outlives its last observer for a while (``MAX_IDLE_INTERESTS``), so that
observing the same key expression again costs no declaration.

Outbound calls in bursts. A turn's token declarations and undeclarations and its puts are
not made in the turn but queued, in order, and made together once the trio tasks
runnable now have run; consecutive puts to one key go as one (a batch, ``batch.py``):
see :class:`_Outbound` for why. Anything that must come
after them (a sync's queries, a new observation, closing) makes the queued calls first.

Zenoh calls back on its own threads: every callback only hands its sample to the runtime
(``Runtime.external``, the thread-safe entry; samples arriving together share one
turn), whose turns do the rest. Callbacks are
registered ``indirect=False`` (run on Zenoh's receiving thread, in arrival order) rather
than through zenoh-python's per-callback Python thread, which would reorder a
subscriber's samples against another's and against the answer to a sync.

What Zenoh does not give: Observe assertions stay local (their observer is a ref, which
cannot cross), so patterns over ``Observe`` see only this session's interest; messages
and assertions travel on different priority lanes, so a message sent after an assertion
may be seen before it by a remote observer; messages published while no router is
reachable are lost.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import threading
from typing import Any, Callable

import trio
import zenoh
from syndicate import turn
from syndicate.actor import Entity, Facet, Ref

from ..dataspace.entity import Dataspace, parse_observe
from ..runtime import Runtime, RuntimeClosed
from .batch import BATCH_MAX_BYTES, BATCH_MAX_COUNT, MalformedBatch, is_batch, pack, unpack
from .keys import (MalformedKey, NotTransferable, ValueTooLarge, assertion_key, assertions,
                   decode_data, encode_value, message_key, parse_assertion_key, pattern_key,
                   presence_key, replay_key, value_key)

log = logging.getLogger(__name__)

# Publications block rather than being dropped when the link is congested: a dataspace
# message is not a sensor reading that the next one replaces.
_BLOCK = zenoh.CongestionControl.BLOCK
# A replay query goes to every session, and every reply counts (no consolidation).
_ALL = zenoh.QueryTarget.ALL
_NONE = zenoh.ConsolidationMode.NONE

REPLAY_BATCH = 500
"""Token keys per reply to a replay query."""

REPLAY_RETRIES = 20
"""Times a present session that did not answer a replay query is asked again."""

REPLAY_TIMEOUT = 10.0
"""Seconds a new interest waits for the other sessions' answers to its replay query."""


MAX_IDLE_INTERESTS = 256
"""Interests whose last observer has gone are kept (listening, their mirror up to date)
for reuse, up to this many, the least recently used closed first: declaring one costs a
round trip to the router, and the classic adapter observes a responder's presence for
each request it makes, dropping the observation when answered."""


def _direct(callback: Callable[[Any], None], drop: Callable[[], None] | None = None) -> Any:
    return zenoh.handlers.Callback(callback, drop, indirect=False)


class _Held:
    """One of our assertions: its token key, value, number if large, and its Zenoh token
    once the queued declaration has been made (None before, or if it failed)."""

    __slots__ = ("key", "value", "number", "token")

    def __init__(self, key: str, value: Any, number: str | None) -> None:
        self.key = key
        self.value = value
        self.number = number
        self.token: Any = None


class _Put:
    """A queued put of one or more messages to one key: consecutive puts to the same key in
    a burst join it (up to the caps in ``batch.py``) and go as one batch payload.

    Why: a one-way stream is bound by CPU per Zenoh call and per sample (each put gives
    up and takes back the GIL, each sample is a callback on a Zenoh thread taking it);
    a batch is one of each for many messages. Only *consecutive* puts merge, so the
    order of messages across keys is unchanged, and within a key it is the batch's."""

    __slots__ = ("session", "key", "bodies", "size")

    def __init__(self, session: zenoh.Session, key: str, body: bytes) -> None:
        self.session = session
        self.key = key
        self.bodies = [body]
        self.size = len(body)

    def join(self, key: str, body: bytes) -> bool:
        """Add ``body`` if it goes to our key and the batch has room for it."""
        size = self.size + len(body) + 4  # 4: room for its length prefix
        if key != self.key or size > BATCH_MAX_BYTES or len(self.bodies) >= BATCH_MAX_COUNT:
            return False
        self.bodies.append(body)
        self.size = size
        return True

    def __call__(self) -> None:
        bodies = self.bodies
        payload = bodies[0] if len(bodies) == 1 else pack(bodies)
        self.session.put(self.key, payload, congestion_control=_BLOCK)


class _Outbound:
    """The Zenoh calls of the proxy's turns that only send (declare or undeclare a token,
    put), queued in order and made together by :meth:`flush`, which runs once the trio
    tasks runnable now have run (``TrioToken.run_sync_soon``): after the turns pending in
    the runtime and, unlike a thunk queued in the runtime, after the other tasks' work
    too (an agent's async actions finishing one after another, each reply drained in
    its own ``run_inline``), so a burst of replies is one burst here (batched puts).

    Why: every such call gives up the GIL and has to take it back, and other threads
    (other spaces' runtimes in the process, Zenoh's callback threads) take it meanwhile.
    Made inside the turns, each call waited 0.4-0.7 ms of wall time for it (0.1 ms of
    CPU, measured on a classic one-way stream), in the middle of the turn's work. Made
    together after the turns, a burst's calls still wait (~0.11 ms each) but the turns
    run uninterrupted: ~15 % less CPU and a ~15 % higher one-way rate (median of five
    alternating runs; notes/2026-12-04-zenoh-rounds.md). Zenoh did not batch the calls more (the
    router wrote as often). Ordering is kept (one FIFO for all of them), and the proxy's
    own interests have been told in the turn itself (see ``ZenohDataspace.is_own``)."""

    __slots__ = ("calls", "queue_task", "soon")

    def __init__(self, queue_task: Callable[[Callable[[], None]], None]) -> None:
        """Made on the runtime's thread (in a turn): ``queue_task`` queues a thunk in the
        runtime, for when trio's run is over."""
        self.calls: list[Callable[[], None]] = []
        self.queue_task = queue_task
        self.soon = trio.lowlevel.current_trio_token().run_sync_soon

    def call(self, call: Callable[[], None]) -> None:
        if not self.calls:
            try:
                self.soon(self._scheduled_flush)
            except trio.RunFinishedError:
                self.queue_task(self.flush)  # shutting down: drained there
        self.calls.append(call)

    def _scheduled_flush(self) -> None:
        # trio's run_sync_soon: an exception here would end the whole run.
        try:
            self.flush()
        except Exception:  # noqa: BLE001 - logged, the process goes on
            log.exception("outbound Zenoh calls failed")

    def put(self, session: zenoh.Session, key: str, body: bytes) -> None:
        """Queue a message's put; it joins the put queued just before it if that one
        goes to the same key and has room (:class:`_Put`)."""
        calls = self.calls
        if calls:
            last = calls[-1]
            if type(last) is _Put and last.join(key, body):
                return
        self.call(_Put(session, key, body))

    def flush(self) -> None:
        """Make the queued calls now (runtime thread); a closed session's errors are
        dropped, as for calls made directly."""
        calls, self.calls = self.calls, []
        for call in calls:
            try:
                call()
            except zenoh.ZError:
                pass  # the session has closed


class _Interest:
    """One key expression observed: its Zenoh subscribers and the mirror dataspace in
    which this process's observers of it are registered."""

    def __init__(self, proxy: "ZenohDataspace", key_expr: str) -> None:
        self.proxy = proxy
        self.key_expr = key_expr
        self.observers = 0
        self.mirror: Ref = turn.ref(Dataspace())
        self.live: dict[str, int] = {}  # token key -> handle of its value in the mirror
        self.fetching: set[str] = set()  # token keys whose large value is on its way
        self.deleted: set[str] = set()  # token keys seen to go (a replay never revives them)
        self.pending_replays = 0  # replay queries (see ZenohDataspace) not answered yet
        self.replay_waiters: list[Callable[[], None]] = []  # syncs waiting for them
        self.closed = False
        namespace = proxy.namespace
        session = proxy.session
        self.pattern = zenoh.KeyExpr(f"{assertions(namespace)}/{key_expr}")
        # No history: the tokens alive now come from the replay query below (Zenoh's
        # history costs O(N) per token in the receiving session: 10,000 tokens took ~2 s).
        self._tokens = session.liveliness().declare_subscriber(
            self.pattern, _direct(self._token_arrived), history=False)
        self._messages = session.declare_subscriber(
            f"{namespace}/m/{key_expr}", _direct(self._message_arrived))
        # Asked after the subscriber: a token declared after its owner answers reaches the
        # subscriber (the declaration travels on a lane of higher priority than the query).
        self.replay("*")

    @property
    def replaying(self) -> bool:
        return self.pending_replays > 0

    def replay(self, session: str, attempt: int = 0) -> None:
        """Ask ``session`` (``*``: every session) for its tokens under our key expression
        (a turn). Every session answers at least once; a session that does not (after a
        router restart Zenoh may declare its presence token before its queryable) is
        asked again while it is present, up to :data:`REPLAY_RETRIES` times."""
        if self.closed:
            return
        self.pending_replays += 1
        answered: list[bool] = []

        def replied(reply: zenoh.Reply) -> None:  # a Zenoh thread
            if reply.ok is not None:
                answered.append(True)
                keys = reply.ok.payload.to_bytes().decode(errors="replace").split("\n")
                self.proxy.enter(lambda: self.replayed(keys))

        def done() -> None:  # a Zenoh thread
            self.proxy.enter(lambda: self.replay_finished(session, attempt, bool(answered)))
        try:
            self.proxy.session.get(
                replay_key(self.proxy.namespace, session), _direct(replied, done),
                payload=str(self.pattern).encode(), target=_ALL, consolidation=_NONE,
                timeout=REPLAY_TIMEOUT)
        except zenoh.ZError:
            self.pending_replays -= 1  # the session has closed

    def drop_tokens_of(self, session: str) -> None:
        """``session`` has gone (or our router has): its tokens go. Zenoh tells a
        subscriber of the tokens it had announced to it, not of those our replay query
        brought, so the proxy retracts them itself."""
        owner = f"u{session}."
        for key in [key for key in (*self.live, *self.fetching)
                    if key.rsplit("/", 1)[-1].startswith(owner)]:
            self.token_deleted(key)

    def forget_deletions_of(self, session: str) -> None:
        """``session`` has (re)appeared: tokens of it seen to go before now may come back
        (a router restart took them away and gives them back)."""
        owner = f"u{session}."
        self.deleted = {key for key in self.deleted
                        if not key.rsplit("/", 1)[-1].startswith(owner)}

    # Zenoh threads: hand over, nothing else (no logging: it would register the thread).

    def _token_arrived(self, sample: zenoh.Sample) -> None:
        put = sample.kind == zenoh.SampleKind.PUT
        key = str(sample.key_expr)
        self.proxy.enter(lambda: self.token_put(key) if put else self.token_deleted(key))


    def _message_arrived(self, sample: zenoh.Sample) -> None:
        key, payload = str(sample.key_expr), sample.payload.to_bytes()
        self.proxy.enter(lambda: self.message(key, payload))

    # Turns in the proxy's facet.

    def replayed(self, keys: list[str]) -> None:
        for key in keys:
            if key:  # an empty answer: the session holds no such token
                self.token_put(key, catching_up=True)

    def replay_finished(self, session: str, attempt: int, answered: bool) -> None:
        if (not answered and session != "*" and attempt < REPLAY_RETRIES
                and not self.closed and session in self.proxy.present):
            def retry() -> None:
                self.replay(session, attempt + 1)
                self.replay_finished_waiting()
            self.pending_replays += 1  # held by the retry, released once it is asked
            self.proxy.later(0.01 * (attempt + 1), retry)
        self.replay_finished_waiting()

    def replay_finished_waiting(self) -> None:
        self.pending_replays -= 1
        if not self.pending_replays:
            waiters, self.replay_waiters = self.replay_waiters, []
            for waiter in waiters:
                waiter()

    def token_put(self, key: str, catching_up: bool = False) -> None:
        if self.proxy.is_own(key):
            return  # told directly by the proxy (see ZenohDataspace._tell_local)
        if catching_up and key in self.deleted:
            return  # the subscriber saw it go after the router answered: stays gone
        self.deleted.discard(key)  # a token may come back: a reconnection declares it again
        if self.closed or key in self.live or key in self.fetching:
            return
        try:
            parsed = parse_assertion_key(key)
        except MalformedKey as exc:
            log.warning("ignoring a token from a peer: %s", exc)
            return
        if parsed.value is not None:
            self.live[key] = turn.publish(self.mirror, parsed.value)
        else:
            self.fetching.add(key)
            self.proxy.fetch(key, parsed.owner, parsed.digest, self)

    def fetched(self, key: str, value: Any) -> None:
        if key in self.fetching and not self.closed:
            self.fetching.discard(key)
            self.live[key] = turn.publish(self.mirror, value)

    def token_deleted(self, key: str) -> None:
        if self.proxy.is_own(key):
            return
        self.deleted.add(key)
        self.fetching.discard(key)
        handle = self.live.pop(key, None)
        if handle is not None:
            turn.retract(handle)

    def own_put(self, key: str, key_expr: zenoh.KeyExpr, value: Any) -> None:
        if not self.closed and key not in self.live and self.pattern.intersects(key_expr):
            self.live[key] = turn.publish(self.mirror, value)

    def own_deleted(self, key: str) -> None:
        handle = self.live.pop(key, None)
        if handle is not None:
            turn.retract(handle)

    def message(self, key: str, payload: bytes) -> None:
        if self.closed:
            return
        if not is_batch(payload):
            self.deliver(key, payload)
            return
        # Several messages in one put (batch.py): delivered in their order, in this turn.
        try:
            bodies = unpack(payload)
        except MalformedBatch as exc:
            log.error("dropping a malformed batch of messages from a peer at %r: %s",
                      key[:300], exc)
            return
        for body in bodies:
            self.deliver(key, body)

    def deliver(self, key: str, body: bytes) -> None:
        # With a json_depth (a classic space's proxy), a message's dictionary fields (a
        # classic message's body) are read straight into JSON, kept with their bytes
        # (protocol/plain_json.py, KeptJSON): the mirror's index passes them on as they
        # are, an agent's inbox takes the JSON, any other observer the Preserves value.
        # Decoding the body into Preserves values and converting them at the inbox had
        # been about a quarter of a received message's Python time.
        try:
            value = decode_data(body, key, self.proxy.json_depth)
        except MalformedKey as exc:
            log.warning("ignoring a message from a peer: %s", exc)
            return
        turn.send(self.mirror, value)

    def close(self) -> None:
        """Stop listening; drop what was mirrored (no observer is left to be told)."""
        self.closed = True
        for subscriber in (self._tokens, self._messages):
            try:
                subscriber.undeclare()
            except zenoh.ZError:
                pass  # the session has closed already
        for handle in self.live.values():
            turn.retract(handle)
        self.live.clear()
        self.fetching.clear()


class ZenohDataspace(Entity):
    """The local proxy (see the module docstring). Create it in a turn of the facet it
    lives in (``facet``); hand out ``turn.ref(proxy)``."""

    def __init__(self, runtime: Runtime, session: zenoh.Session, namespace: str,
                 facet: Facet, *, json_depth: int = 0) -> None:
        self.runtime = runtime
        self.json_depth = json_depth  # see _Interest.deliver
        self.session = session
        self.namespace = namespace
        self.facet = facet
        self._zid = str(session.zid())
        self._next = 0
        self._own = f"u{self._zid}."
        self._tokens: dict[int, _Held] = {}  # handle -> our assertion
        self._observes: dict[int, tuple[_Interest, int]] = {}  # handle -> (interest, in mirror)
        self._interests: dict[str, _Interest] = {}  # in use or idle
        self._idle: collections.OrderedDict[str, _Interest] = collections.OrderedDict()
        self._large: dict[str, bytes] = {}  # our large values, by their number
        self._queryable: Any = None
        self._fetches = 0  # large values being fetched
        self._waiting_syncs: list[Ref] = []
        self._syncs: list[Ref] = []  # syncs whose queries are issued in the next turn
        self._unconfirmed_puts = False  # published since the last data-lane sync query
        self._data_barriers = 0  # data-lane sync queries not answered yet
        # Actions handed over by Zenoh's threads (see enter()).
        self._arrivals: list[Callable[[], None]] = []
        self._arrivals_lock = threading.Lock()
        self._arrivals_pending = False
        self.present: set[str] = set()  # other sessions whose presence token is seen
        self.closed = False
        self._liveliness = session.liveliness()  # one, not one a declaration
        self._outbound = _Outbound(runtime.system.queue_task)
        # Declared last: their callbacks may run at once (on Zenoh's threads).
        self._replay_queryable = session.declare_queryable(
            replay_key(namespace, self._zid), _direct(self._replay_asked))
        # Sessions' presence: when one appears (new, or back after a router restart, which
        # took its tokens away from our subscribers), each interest asks it for its tokens;
        # when one goes (or our router does), its tokens go.
        # History here is cheap (a token per session) and is replayed by Zenoh when this
        # session reconnects.
        self._presence = session.liveliness().declare_token(presence_key(namespace, self._zid))
        self._presences = session.liveliness().declare_subscriber(
            presence_key(namespace, "*"), _direct(self._presence_changed), history=True)

    @property
    def interest_count(self) -> int:
        """Key expressions observed now (idle ones kept for reuse not counted)."""
        return len(self._interests) - len(self._idle)

    @property
    def idle_interest_count(self) -> int:
        return len(self._idle)

    @property
    def token_count(self) -> int:
        return len(self._tokens)

    def is_own(self, token_key: str) -> bool:
        """Whether a token is this session's. Zenoh's delivery of our own tokens to our
        own subscribers is not ordered with the router's answers to a sync, so the proxy
        tells its interests of its own tokens itself, in the turn that makes or ends them,
        and ignores Zenoh's copies (they also survive a router restart: nothing to redo)."""
        return token_key.rsplit("/", 1)[-1].startswith(self._own)

    def enter(self, action: Callable[[], None]) -> None:
        """Run ``action`` in a turn of the proxy's facet, from any thread, after those
        entered before it. Actions arriving while a turn for them is pending join it: a
        burst of samples (a new observer's replay, a stream of requests) costs one hand-
        over to the runtime and one turn, not one of each per sample."""
        with self._arrivals_lock:
            self._arrivals.append(action)
            if self._arrivals_pending:
                return
            self._arrivals_pending = True
        self._schedule_arrivals()

    def later(self, delay: float, action: Callable[[], None]) -> None:
        """Run ``action`` in a turn of the proxy's facet ``delay`` seconds from now (a
        turn)."""
        async def wait() -> None:
            await trio.sleep(delay)
            self.enter(action)
        try:
            self.runtime.system.nursery.start_soon(wait)
        except RuntimeError:
            pass  # the runtime is shutting down

    def _schedule_arrivals(self) -> None:
        try:
            self.runtime.external(self.facet, self._run_arrivals)
        except RuntimeClosed:
            pass  # shutting down: what arrives now has no one to go to

    def _run_arrivals(self) -> None:
        # What has arrived so far; later arrivals get a turn of their own, so that a
        # steady stream cannot keep this turn going.
        with self._arrivals_lock:
            batch, self._arrivals = self._arrivals, []
        for action in batch:
            action()
        with self._arrivals_lock:
            self._arrivals_pending = bool(self._arrivals)
        if self._arrivals_pending:
            self._schedule_arrivals()

    # --- the entity -------------------------------------------------------------------------

    def on_publish(self, value: Any, handle: int) -> None:
        if self.closed:
            return
        observe = parse_observe(value)
        if observe is not None:
            # What this session sent before observing is not for this observer: it goes
            # out before the observer's subscription is declared or it joins the mirror.
            self._outbound.flush()
            key_expr = pattern_key(value.fields[0])
            interest = self._interests.get(key_expr)
            self._idle.pop(key_expr, None)
            if interest is None:
                interest = self._interests[key_expr] = _Interest(self, key_expr)
                for held in self._tokens.values():
                    interest.own_put(held.key, zenoh.KeyExpr(held.key), held.value)
            interest.observers += 1
            self._observes[handle] = (interest, turn.publish(interest.mirror, value))
            return
        encoded = self._encode(value, "asserted")
        if encoded is None:
            return
        key, data = encoded
        number = str(self._next)
        self._next += 1
        token_key, large = assertion_key(self.namespace, key, data, f"u{self._zid}.{number}")
        if large:
            self._serve_large_values()
            self._large[number] = data
        held = self._tokens[handle] = _Held(token_key, value, number if large else None)
        self._outbound.call(lambda: self._declare(held))
        if self._interests:
            key_expr = zenoh.KeyExpr(token_key)
            for interest in self._interests.values():
                interest.own_put(token_key, key_expr, value)

    def on_retract(self, handle: int) -> None:
        held = self._tokens.pop(handle, None)
        if held is not None:
            for interest in self._interests.values():
                interest.own_deleted(held.key)
            if not self.closed:
                self._outbound.call(lambda: self._undeclare(held))
            if held.number is not None:
                self._large.pop(held.number, None)
            return
        observed = self._observes.pop(handle, None)
        if observed is not None:
            interest, mirror_handle = observed
            turn.retract(mirror_handle)
            interest.observers -= 1
            if interest.observers == 0:
                self._idle[interest.key_expr] = interest
                if len(self._idle) > MAX_IDLE_INTERESTS:
                    _key_expr, oldest = self._idle.popitem(last=False)
                    del self._interests[oldest.key_expr]
                    oldest.close()

    def on_message(self, value: Any) -> None:
        if self.closed:
            return
        # A classic agent's message comes with its body already encoded (a Preencoded,
        # ZenohDataspaceSpace._wire_bodies): it is put as it is; our own interests get
        # it back from Zenoh, decoded, like everyone's.
        encoded = self._encode(value, "sent")
        if encoded is not None:
            self._outbound.put(self.session, message_key(self.namespace, encoded[0]),
                               encoded[1])
            self._unconfirmed_puts = True

    def _declare(self, held: _Held) -> None:
        held.token = self._liveliness.declare_token(held.key)

    @staticmethod
    def _undeclare(held: _Held) -> None:
        if held.token is not None:  # None: its declaration failed (the session closed)
            held.token.undeclare()
            held.token = None

    @staticmethod
    def _encode(value: Any, what: str) -> tuple[Any, bytes] | None:
        """The value's key and bytes, or None (logged) if Zenoh cannot carry it. Handles
        refuse such values before publishing; this is native code's direct publish."""
        try:
            return encode_value(value)
        except (NotTransferable, ValueTooLarge) as exc:
            log.warning("not %s on Zenoh: %s", what, exc)
            return None

    def on_sync(self, peer: Ref) -> None:
        if self.closed:
            turn.send(peer, True)
            return
        # Syncs arriving together (a burst of requests, each followed by a sync) share one
        # set of queries, issued in a turn after this one, so after everything done here.
        self._syncs.append(peer)
        if len(self._syncs) == 1:
            self.enter(self._issue_syncs)

    def _issue_syncs(self) -> None:
        # The queries must follow what this session sent: anything queued goes first.
        self._outbound.flush()
        peers, self._syncs = self._syncs, []
        if self.closed:
            for peer in peers:
                turn.send(peer, True)
            return
        # Replay queries in flight: what they bring is part of what the dataspace had.
        replaying = [i for i in self._interests.values() if i.replaying]
        # The query on the publications' lane is needed only if something was published
        # since the last one was answered (in assertion mode a classic request publishes
        # nothing, and the adapter syncs after every request but the first to an agent).
        data_barrier = self._unconfirmed_puts or self._data_barriers > 0
        remaining = [1 + data_barrier + len(replaying)]

        def one_done() -> None:  # a Zenoh thread, or this one
            remaining[0] -= 1
            if remaining[0] == 0:
                self.enter(lambda: self._synced(peers))

        barrier = f"{self.namespace}/sync/{self._zid}"
        # Answered by the router once it has processed what came before on each lane.
        self.session.liveliness().get(barrier, _direct(lambda _reply: None, one_done))
        if data_barrier:
            self._unconfirmed_puts = False
            self._data_barriers += 1

            def data_done() -> None:  # a Zenoh thread
                self.enter(self._data_barrier_answered)
                one_done()
            self.session.get(barrier, _direct(lambda _reply: None, data_done))
        for interest in replaying:
            interest.replay_waiters.append(one_done)

    def _data_barrier_answered(self) -> None:
        self._data_barriers -= 1

    def _synced(self, peers: list[Ref]) -> None:
        if self._fetches:
            self._waiting_syncs.extend(peers)  # answered once the fetches are in
        else:
            for peer in peers:
                turn.send(peer, True)

    # --- replay: a new interest asks every session for its tokens ----------------------------

    def _presence_changed(self, sample: zenoh.Sample) -> None:  # a Zenoh thread
        session = str(sample.key_expr).rsplit("/", 1)[-1]
        if session == self._zid:
            return
        if sample.kind == zenoh.SampleKind.PUT:
            self.enter(lambda: self._session_appeared(session))
        else:
            self.enter(lambda: self._session_gone(session))

    def _session_gone(self, session: str) -> None:
        self.present.discard(session)
        for interest in self._interests.values():
            interest.drop_tokens_of(session)

    def _session_appeared(self, session: str) -> None:
        if self.closed:
            return
        self.present.add(session)
        for interest in self._interests.values():
            interest.forget_deletions_of(session)
            interest.replay(session)

    def _replay_asked(self, query: zenoh.Query) -> None:  # a Zenoh thread
        self.enter(lambda: self._answer_replay(query))

    def _answer_replay(self, query: zenoh.Query) -> None:
        """Reply with the keys of our tokens that the asking interest's key expression
        intersects, :data:`REPLAY_BATCH` to a reply; the query is finalized (dropped) in
        any case, which tells the asker we are done."""
        try:
            if self.closed or query.payload is None:
                return
            try:
                wanted = zenoh.KeyExpr(query.payload.to_bytes().decode())
            except (zenoh.ZError, UnicodeDecodeError, ValueError):
                return  # not a key expression: not one of ours asking
            keys = [held.key for held in self._tokens.values()
                    if wanted.intersects(zenoh.KeyExpr(held.key))]
            here = replay_key(self.namespace, self._zid)
            for start in range(0, max(len(keys), 1), REPLAY_BATCH):  # at least one reply
                query.reply(here, "\n".join(keys[start:start + REPLAY_BATCH]).encode())
        except zenoh.ZError:
            pass  # the session is closing, or the asker has gone
        finally:
            query.drop()

    # --- large values (keys.py: served by their owner, fetched by observers) ------------------

    def _serve_large_values(self) -> None:
        if self._queryable is None:
            self._queryable = self.session.declare_queryable(
                value_key(self.namespace, f"{self._zid}/*"), _direct(self._answer))

    def _answer(self, query: zenoh.Query) -> None:  # a Zenoh thread
        number = str(query.key_expr).rsplit("/", 1)[-1]
        data = self._large.get(number)  # a dict read: safe from another thread
        if data is not None:
            query.reply(query.key_expr, data)

    def fetch(self, key: str, owner: str, digest: str, interest: _Interest) -> None:
        """Ask the owner of a large value for it (a turn; the answer comes back as one)."""
        zid, _, number = owner[1:].partition(".")
        self._fetches += 1
        got: list[bytes] = []

        def reply(answer: zenoh.Reply) -> None:  # a Zenoh thread
            if answer.ok is not None and not got:
                got.append(answer.ok.payload.to_bytes())

        def done() -> None:  # a Zenoh thread
            self.enter(lambda: self._fetched(key, digest, got, interest))

        self.session.get(value_key(self.namespace, f"{zid}/{number}"), _direct(reply, done),
                         timeout=10.0)

    def _fetched(self, key: str, digest: str, got: list[bytes], interest: _Interest) -> None:
        self._fetches -= 1
        if not got:
            if key in interest.fetching:  # not retracted meanwhile: its owner is unreachable
                log.warning("no answer for the value of %s: left out", key[:200])
                interest.fetching.discard(key)
        elif hashlib.sha256(got[0]).hexdigest() != digest:
            log.warning("ignoring a value whose digest does not match its key %s", key[:200])
        else:
            try:
                interest.fetched(key, decode_data(got[0], key))
            except MalformedKey as exc:
                log.warning("ignoring a value from a peer: %s", exc)
        if not self._fetches:
            for peer in self._waiting_syncs:
                turn.send(peer, True)
            self._waiting_syncs.clear()

    # --- shutdown -------------------------------------------------------------------------

    def close(self) -> None:
        """Undeclare everything (a turn in the proxy's facet); the session stays open."""
        if self.closed:
            return
        self.closed = True
        for interest in list(self._interests.values()):
            interest.close()
        self._interests.clear()
        self._idle.clear()
        self._outbound.flush()  # declarations queued are made, then undone with the rest
        for held in self._tokens.values():
            try:
                self._undeclare(held)
            except zenoh.ZError:
                pass
        self._tokens.clear()
        for declared in (self._queryable, self._replay_queryable, self._presences,
                         self._presence):
            if declared is not None:
                try:
                    declared.undeclare()
                except zenoh.ZError:
                    pass
        for peer in self._waiting_syncs:
            turn.send(peer, True)
        self._waiting_syncs.clear()
