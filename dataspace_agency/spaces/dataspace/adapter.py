"""The adapter: classic messages as dataspace facts and messages (see ``vocabulary.py``).

One :class:`DataspaceTransport` per agent, living in the agent's actor. It publishes the
agent's presence and actions, observes what is addressed to it, and carries the core's
sends and replies, in one of two modes:

``"message"``
    Every classic message is a Syndicate message ``<message to body>``. Queue-like:
    nothing persists, a request to an absent agent is lost, a dead responder is noticed
    only by the requester's timeout.
``"assertion"``
    A point-to-point action message is a fact ``<request to id body>`` its sender holds
    until answered; the responder answers with ``<reply to parentId from body>`` held
    while the request stands. The sender watches ``<agent to>``: when the responder's
    presence goes (removed, crashed), pending requests fail at once. A request to an agent
    not yet present waits for it. A sender that leaves withdraws its requests, and the
    responder sees the withdrawal. Broadcasts, and replies to them, stay messages.

Inbound values that are not well-formed classic messages (possible from native actors or
remote peers) are dropped with a warning; they never crash the agent.

Two checks keep remote peers honest (see docs/security.md): a reply counts only if it
comes from the agent the request went to (``AgentCore`` checks the sender against the
pending request, in both modes), and an inbound message over ``max_message_size`` bytes
(compact JSON; default :data:`~.message.DEFAULT_MAX_MESSAGE_SIZE`, ``None``: no limit) is
not handled: a request or action message gets an ``[error]`` answer naming its size and
the limit, anything else is dropped with a warning.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import trio
from preserves import Embedded, ImmutableDict, Record, Symbol
from syndicate import turn
from syndicate.actor import Entity, Facet, Ref
from syndicate.during import During

from ...classic import values
from ...classic.core import AgentCore, Ticket
from ...classic.message import (BROADCAST, DEFAULT_MAX_MESSAGE_SIZE, ERROR, RESPONSE,
                                MessageError, check_message_size, make_reply,
                                validate_message)
from ...dataspace.entity import Dataspace
from ...protocol.codec import preencode_json
from ...protocol.wire_values import PlainJSON
from ...runtime import Runtime
from .vocabulary import (AGENT, CAPTURE, MESSAGE, REPLY, REQUEST, action_fact,
                         agent_fact, lit, message_envelope, rec, reply_fact, request_fact)

log = logging.getLogger(__name__)

MODES = ("assertion", "message")


def check_mode(mode: str) -> None:
    """ValueError unless ``mode`` is one of :data:`MODES`."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


_OBSERVE = Symbol("Observe")
_BROADCASTS = rec(MESSAGE, lit(BROADCAST), CAPTURE)  # one pattern value for every agent


def observe(ds: Ref, pattern: Any, entity: Any) -> int:
    """Inside a turn: assert interest in ``pattern`` (a raw or parsed pattern)."""
    return turn.publish(ds, Record(_OBSERVE, [pattern, Embedded(turn.ref(entity))]))


# The message a body was made from, kept on the body by message_body(): see parse_message.
_SOURCE = "_dataspace_agency_classic_message"


def message_body(message: dict) -> Any:
    """The Preserves form of a validated classic message, for the dataspace. The body
    keeps a reference to the message it was made from, so that an agent of this process
    receiving it takes a copy of that instead of converting and validating it again: a
    message is validated once, by its sender, and converted once per hop."""
    body = values.to_preserves(message, "message", values.MESSAGE_DEPTH)
    setattr(body, _SOURCE, message)
    return body


class LocalBody:
    """A message sent in message mode through a dataspace of this process, not yet made
    a Preserves value: an agent of this process takes a copy of the message itself
    (:func:`parse_message`), and only an observer that needs the Preserves form (native
    code, the inspector, a pattern looking into the body) makes it, once, through
    ``__preserve__``, which preserves, syndicate-py and the index all honour (see
    ``dataspace/index.py``, ``Index.send``). Most messages then are never converted (4-6
    Python calls and four dictionaries fewer a message)."""

    __slots__ = ("message", "_value")

    def __init__(self, message: dict) -> None:
        self.message = message
        self._value: Any = None

    def __preserve__(self) -> Any:
        if self._value is None:
            self._value = message_body(self.message)
        return self._value


def parse_message(body: Any, where: str) -> dict | None:
    """A classic message from its Preserves form, or None (with a warning) if malformed.
    A body made in this process (a :class:`LocalBody`, or a Preserves form made by
    :func:`message_body`) gives a copy of its message (each receiver its own, as from a
    queue); any other (from another process, or built by native code) is converted and
    validated; one read straight into JSON (a ``PlainJSON``, by a connection: see
    ``_Inbox.plain_json``; or a ``KeptJSON``, by a Zenoh session's proxy) is
    validated."""
    kind = type(body)
    if kind is LocalBody:
        return values.plain_copy(body.message)
    source = getattr(body, _SOURCE, None) if kind is ImmutableDict else None
    if source is not None:
        return values.plain_copy(source)
    try:
        if isinstance(body, PlainJSON):
            return validate_message(body.take(), copy=False)
        return validate_message(values.from_preserves(body, "message", values.MESSAGE_DEPTH),
                                copy=False)
    except (values.NotJSON, MessageError) as exc:
        log.warning("dropping a malformed classic message %s: %s", where, exc)
        return None


def _route_all(burst: tuple[Any, list[Any]]) -> None:
    """Inside a turn of the dataspace ``burst[0]`` (or a relay): each message of the
    burst, in order."""
    on_message = burst[0].on_message
    for message in burst[1]:
        on_message(message)


class _RequestTicket(Ticket):
    """An inbound request in assertion mode, while its fact stands. ``reply_handle``: the
    reply's fact once asserted, retracted when the request is withdrawn; ``with_core``:
    whether the core was given the request (a refused one is answered here)."""

    def __init__(self) -> None:
        super().__init__()
        self.reply_handle: int | None = None
        self.with_core = False


class _Facts(Entity):
    """Tells a transport of each capture tuple of one pattern as it appears
    (``on_added(*captures) -> ticket or None``) and, if that gave a ticket, as it goes
    (``on_removed(ticket)``).

    The requests and replies of assertion mode come here rather than through
    ``syndicate.during.During``, which makes a facet per fact: a facet made, checked
    for inertness in a turn of its own, and stopped was most of what a request cost
    besides the routing itself (two turns and about 80 Python calls a request,
    ``benchmarks/request_calls.py``). What the facet did for a request, retracting the
    reply with it, the ticket does (``DataspaceTransport._request_withdrawn``)."""

    def __init__(self, on_added: Callable[..., Any],
                 on_removed: Callable[[Any], None] | None = None) -> None:
        self._on_added = on_added
        self._on_removed = on_removed
        self._held: dict[int, Any] = {}

    def on_publish(self, captures: Any, handle: int) -> None:
        ticket = self._on_added(*captures)
        if ticket is not None:
            self._held[handle] = ticket

    def on_retract(self, handle: int) -> None:
        ticket = self._held.pop(handle, None)
        if ticket is not None and self._on_removed is not None:
            self._on_removed(ticket)


class _PresenceWatch:
    """Watching ``<agent id>`` for the requests pending to that agent. Kept while the
    agent is present even with nothing pending, so that a stream of requests to the
    same agent does not subscribe and unsubscribe every time.

    A departure fails only requests the dataspace had received before it (``confirmed``):
    a request made through a watch that was already running might reach the dataspace
    after a departure the watch has not heard of yet; that request waits for the agent
    to come back, like any request to an absent agent."""

    def __init__(self) -> None:
        self.pending: set[str] = set()
        self.confirmed: set[str] = set()
        self.unconfirmed: set[str] = set()  # held since the last sync was asked for
        self.present = False
        self.facet: Facet | None = None


class _Inbox(Entity):
    """What is addressed to an agent as a message (its ``<message id $body>`` and the
    broadcasts). ``routed_inline``: a dataspace in this process tells it inside the
    routing turn (see ``dataspace/entity.py``), and so does a connection's relay inside
    the turn that reads a packet (``protocol/relay.py``): it only parses and queues work
    for the core, so it needs no turn of its own."""

    routed_inline = True
    # A connection's relay reads what comes here from the wire straight into JSON, as
    # nested as from_preserves allows (protocol/plain_json.py): parse_message then only
    # validates it.
    plain_json = values.MESSAGE_DEPTH

    def __init__(self, handler: Callable[[Any], None]) -> None:
        self._handler = handler

    def on_message(self, captures: Any) -> None:
        self._handler(*captures)


class DataspaceTransport:
    """Carries one agent's messages through the dataspace (runtime thread only).

    ``max_message_size``: the largest inbound classic message handled, in bytes of
    compact JSON (``None``: no limit). A class attribute, so it can be set for every
    agent of the process (``DataspaceTransport.max_message_size = ...``) or per
    transport."""

    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE
    # Set by the space, for whereabouts(): is this fact asserted now (a dataspace in
    # this process), and a note when the connection to the dataspace is lost.
    presence: Callable[[Any], bool] | None = None
    connection_note: Callable[[], str | None] | None = None
    # Set by the space when the dataspace is behind a connection (a server): a message
    # sent then meets nothing in this process but the relay, which only writes it, so
    # its body is written as wire bytes straight from the classic message
    # (codec.preencode_json) instead of being made a Preserves value first (4-6 us a
    # message; RemoteDataspaceSpace).
    wire_bodies: bool = False

    def __init__(self, mode: str, runtime: Runtime, ds: Ref, facet: Facet,
                 agent_id: str) -> None:
        check_mode(mode)
        self.mode = mode
        self.runtime = runtime
        self.ds = ds
        self.facet = facet
        self.agent_id = agent_id
        self.core: AgentCore | None = None
        self._held: dict[str, int] = {}  # our pending request id -> its fact's handle
        self._watches: dict[str, _PresenceWatch] = {}
        self._unconfirmed: list[_PresenceWatch] = []  # see _watch
        self._outbox: list[Callable[[], None]] = []  # see _emit
        # Message mode on a dataspace in this process (or a connection's relay): sends
        # are routed in a turn of the dataspace itself (see _flush_routes), not first in
        # a turn of the agent's. Decided in start(), once the space has set wire_bodies.
        self._routes: list[Any] = []
        self._route_here: tuple[Facet, Any] | None = None
        self._offers: dict[str, int] = {}  # action name -> its <action ...> fact's handle
        # Runtime thread, outside turns: ``action()``, then the turns it queued, now (see
        # ``TrioSystem.run_inline``); the core runs calls from other threads so. The
        # system's own method, not a wrapper: a call fewer on every request's path.
        self.run_inline: Callable[[Callable[[], Any]], Any] = runtime.system.run_inline

    # --- set-up (inside the agent actor's boot turn) ------------------------------------------

    def start(self, core: AgentCore, action_helps: dict[str, Any],
              reactions: list[tuple[str, Any, Callable]]) -> None:
        """Publish presence and actions (``action_helps``: name -> help, already in
        Preserves form) and subscribe to what is addressed to the agent."""
        self.core = core
        if self.mode == "message" and (self.wire_bodies or isinstance(self.ds.entity, Dataspace)):
            # The sends meet only this dataspace, or with wire_bodies only the
            # connection's relay (or the reconnecting forwarder in front of it), or the
            # Zenoh proxy (zenoh/proxy.py), which only puts them.
            self._route_here = (self.ds.facet, self.ds.entity)
        me = self.agent_id
        turn.publish(self.ds, agent_fact(me))
        for name, help_value in action_helps.items():
            self._offers[name] = turn.publish(self.ds, action_fact(me, name, help_value))

        inbound = _Inbox(self._on_message)
        observe(self.ds, rec(MESSAGE, lit(me), CAPTURE), inbound)
        observe(self.ds, _BROADCASTS, inbound)
        if self.mode == "assertion":
            observe(self.ds, rec(REQUEST, lit(me), CAPTURE, CAPTURE),
                    _Facts(self._on_request, self._request_withdrawn))
            observe(self.ds, rec(REPLY, lit(me), CAPTURE, CAPTURE, CAPTURE),
                    _Facts(self._on_reply))
        for kind, pattern, handler in reactions:
            if kind == "during":
                observe(self.ds, pattern, During().add_handler(handler))
            else:
                observe(self.ds, pattern, During().msg_handler(handler))

    # --- inbound (inside turns of the agent actor) -----------------------------------------------

    def _later(self, action: Callable[[], None]) -> None:
        # Core logic runs after the current turn, never nested inside it.
        self.runtime.system.queue_task(action)

    def _too_big(self, message: dict) -> dict | None:
        """None if ``message`` is within the size limit; else (after a warning) the
        ``[error]`` reply to answer it with, or ``{}`` for a message not to answer."""
        if self.max_message_size is None:
            return None
        try:
            check_message_size(message, self.max_message_size)
        except MessageError as exc:
            log.warning('agent "%s": not handling a message from "%s": %s', self.agent_id,
                        message["from"], exc)
            if message["to"] == BROADCAST or message["action"]["name"] in (RESPONSE, ERROR):
                return {}
            return make_reply(message, self.agent_id, error=f"MessageError: {exc}",
                              check=False)
        return None

    def _on_message(self, body: Any) -> None:
        message = parse_message(body, f'for "{self.agent_id}"')
        if message is None:
            return
        limit = self.max_message_size
        if isinstance(body, PlainJSON) and limit is not None and body.json_bound <= limit:
            refusal = None  # its JSON cannot be over the limit: not written to be sized
        else:
            refusal = self._too_big(message)
        if refusal is None:
            self.core.inbound(message)  # only queues work: safe inside the turn
        elif refusal:
            turn.send(self.ds, message_envelope(refusal["to"], message_body(refusal)))

    def _on_request(self, message_id: Any, body: Any) -> _RequestTicket | None:
        message = parse_message(body, f'in a request to "{self.agent_id}"')
        if message is None or message["meta"]["id"] != message_id:
            return None
        ticket = _RequestTicket()
        refusal = self._too_big(message)
        if refusal is not None:
            # Held while the request stands and withdrawn with it, like any reply.
            ticket.reply_handle = turn.publish(self.ds, reply_fact(
                refusal["to"], message_id, self.agent_id, message_body(refusal)))
            return ticket
        ticket.with_core = True
        self.core.inbound(message, ticket)
        return ticket

    def _request_withdrawn(self, ticket: _RequestTicket) -> None:
        """The request's fact has gone (answered, or its sender gave up or left)."""
        if ticket.reply_handle is not None:
            turn.retract(ticket.reply_handle)
            ticket.reply_handle = None
        ticket.withdrawn = True  # a reply still in the outbox is not asserted (reply())
        if ticket.with_core:
            self.core.withdrawn(ticket)

    def _on_reply(self, parent_id: Any, sender: Any, body: Any) -> None:
        # Returns no ticket: a reply's retraction, after its request's, needs nothing.
        reply = parse_message(body, f'in a reply to "{self.agent_id}"')
        if (reply is not None and reply["meta"].get("parent_id") == parent_id
                and self._too_big(reply) is None):
            # Matched here, inside this turn, as message mode's replies are (_on_message):
            # the core only wakes the caller or queues work, and the request's withdrawal
            # goes into this same turn (see withdraw) rather than a turn of its own.
            self.core.reply_arrived(reply, sender, held=True)

    # --- outbound (runtime thread, outside turns) ------------------------------------------------

    def _in_turn(self, facet: Facet, action: Callable[[], Any]) -> Any:
        if facet.alive and facet.actor.alive:
            return self.runtime.run_turn(facet, action)
        return None  # the agent (or the request being answered) has gone

    # Outbound effects are batched: each goes into the outbox, and the outbox is flushed
    # as ONE turn when the runtime next drains its queue. An agent that sends a burst
    # (or answers several requests) then costs one turn, and one delivery to the
    # dataspace, per burst instead of per message; a lone message waits for nothing, as
    # the flush is queued behind the work already pending. Order is kept: the outbox is
    # FIFO and holds every kind of effect (sends, holds, withdrawals, replies).

    def _emit(self, action: Callable[[], None]) -> None:
        if not self._outbox:
            self.runtime.system.queue_task(self._flush)
        self._outbox.append(action)

    def _flush(self) -> None:
        outbox, self._outbox = self._outbox, []
        if outbox and self.facet.actor.alive:
            self.runtime.run_effects(self.facet, self._perform, outbox)

    def flush(self) -> None:
        """Runtime thread: carry out now what is waiting for its batched turn. Called
        before the agent's actor stops, so that what it sent last (say, a goodbye from
        ``before_remove``) is not dropped with it."""
        self._flush()
        if self._route_here is not None:
            self._flush_routes()

    def _perform(self, outbox: list[Callable[[], None]]) -> None:
        # Every effect is asserted or sent in the agent's facet (a reply is retracted
        # with its request by handle, see _request_withdrawn), the facet this turn runs in.
        for action in outbox:
            action()
        if self._unconfirmed:
            self._ask_confirmation()

    def deliver(self, message: dict) -> None:
        to, name = message["to"], message["action"]["name"]
        if self.mode == "assertion" and to != BROADCAST and name not in (RESPONSE, ERROR):
            body = message_body(message)
            self._emit(lambda: self._hold(message, body))
        elif self._route_here is not None:
            if not self._routes:
                self.runtime.system.queue_task(self._flush_routes)
            self._routes.append(message_envelope(to, self._sent_body(message)))
        else:
            body = self._sent_body(message)
            self._emit(lambda: turn.send(self.ds, message_envelope(to, body)))

    def _sent_body(self, message: dict) -> Any:
        """The body of a message sent as a Syndicate message: with ``wire_bodies``, the
        bytes the relay writes, made straight from the (validated, plain) message (a
        value of another type somewhere in it, a reply's value being checked, not
        copied, takes the careful way, :func:`message_body`); routed here to a dataspace
        of this process, a :class:`LocalBody`, made a value only if an observer needs
        it; else its Preserves form."""
        if self.wire_bodies:
            try:
                return preencode_json(message)
            except (TypeError, ValueError):
                pass
        elif self._route_here is not None:
            return LocalBody(message)
        return message_body(message)

    def _flush_routes(self) -> None:
        """Message mode, dataspace in this process (or, with ``wire_bodies``, a
        connection's relay): route the burst of sends in one turn of the dataspace (the
        relay) itself. In message mode an agent's outbox holds nothing but sends (its
        own facts go by ``publish``, in turns of their own, queued in order with this
        one), so skipping the agent's turn changes no order anyone can see; it saves a
        turn per burst."""
        routes, self._routes = self._routes, []
        facet, dataspace = self._route_here
        if routes and self.facet.actor.alive and facet.alive:
            self.runtime.run_effects(facet, _route_all, (dataspace, routes))

    def _hold(self, message: dict, body: Any) -> None:
        message_id, to = message["meta"]["id"], message["to"]
        self._held[message_id] = turn.publish(self.ds, request_fact(to, message_id, body))
        self._watch(to, message_id)

    def withdraw(self, message: dict) -> None:
        if self.mode == "message":
            return  # nothing is held in message mode
        # Looked up inside the flush, after the hold that may still be in the outbox.
        def unhold() -> None:
            handle = self._held.pop(message["meta"]["id"], None)
            if handle is not None:
                turn.retract(handle)
                self._unwatch(message["to"], message["meta"]["id"])
        active = turn.active
        if not self._outbox and active is not None and active._facet.actor is self.facet.actor:
            unhold()  # in a turn of ours (a reply just matched), with nothing queued before
        else:
            self._emit(unhold)

    def reply(self, ticket: _RequestTicket, reply: dict) -> None:
        body = message_body(reply)
        fact = reply_fact(reply["to"], reply["meta"]["parent_id"], self.agent_id, body)

        def answer() -> None:
            if not ticket.withdrawn:  # else withdrawn meanwhile: nobody waits for it
                ticket.reply_handle = turn.publish(self.ds, fact)
        self._emit(answer)

    # --- presence of the agents we wait on (inside turns) --------------------------------------

    def _watch(self, agent_id: str, message_id: str) -> None:
        watch = self._watches.get(agent_id)
        if watch is None:
            # A new subscription reaches the dataspace after the request: its first
            # answer (present or not) already reflects the request's arrival.
            watch = self._watches[agent_id] = _PresenceWatch()
            watch.confirmed.add(message_id)

            def present() -> None:
                # Runs while <agent agent_id> is asserted; its facet stops when that goes.
                watch.present = True

                def gone() -> None:
                    if self._watches.get(agent_id) is not watch:
                        return  # we stopped watching: not a departure
                    watch.present = False
                    failed, watch.confirmed = watch.confirmed, set()
                    if failed:
                        why = (self.connection_note() if self.connection_note is not None
                               else None)
                        self._later(lambda: self.core.requests_failed(failed, agent_id, why))
                    if not watch.pending:
                        self._drop_watch(agent_id)
                turn.on_stop(gone)

            @turn.facet
            def watching() -> None:
                observe(self.ds, rec(AGENT, lit(agent_id)), During().add_handler(present))
            watch.facet = watching
        else:
            # Confirmed once the dataspace answers a sync sent after the request: one
            # sync at the end of this turn, for every request it held (a burst of sends
            # to one agent costs one sync, not one each).
            if not watch.unconfirmed:
                self._unconfirmed.append(watch)
            watch.unconfirmed.add(message_id)
        watch.pending.add(message_id)

    def _ask_confirmation(self) -> None:
        """End of a turn that held requests to agents already watched: one sync, sent
        after all of them, confirms them all when the dataspace answers it."""
        watches, self._unconfirmed = self._unconfirmed, []
        for watch in watches:
            held, watch.unconfirmed = watch.unconfirmed, set()
            turn.sync(self.ds, lambda watch=watch, held=held:
                      watch.confirmed.update(held & watch.pending))

    def _unwatch(self, agent_id: str, message_id: str) -> None:
        watch = self._watches.get(agent_id)
        if watch is None:
            return
        watch.pending.discard(message_id)
        watch.confirmed.discard(message_id)
        if not watch.pending and not watch.present:
            self._drop_watch(agent_id)  # nobody to keep watching for

    def _drop_watch(self, agent_id: str) -> None:
        watch = self._watches.pop(agent_id)
        turn.stop(watch.facet)

    # --- what is known of an agent (runtime thread) ---------------------------------------------

    def whereabouts(self, agent_id: str) -> str | None:
        """What the dataspace tells of ``agent_id``, for a request's ``TimeoutError``:
        present but silent, or absent. ``presence``/``connection_note``: set by the
        space (a dataspace in this process can be asked directly; a remote one knows
        when its connection is lost)."""
        lost = self.connection_note() if self.connection_note is not None else None
        if lost:
            return lost
        watch = self._watches.get(agent_id)
        if watch is not None:  # assertion mode: we watch whom our requests wait for
            present: bool | None = watch.present
        elif self.presence is not None:
            present = self.presence(agent_fact(agent_id))
        else:
            present = None
        if present is None:
            return None  # this space cannot tell
        if present:
            return f'agent "{agent_id}" is present and has not answered'
        return f'no agent "{agent_id}" is present in the space'

    # --- facts of the agent's own (any thread) -------------------------------------------------

    def publish(self, value: Any) -> int:
        return self._fact_call(lambda: turn.publish(self.ds, value))

    def retract(self, handle: int) -> None:
        self._fact_call(lambda: turn.retract(handle))

    def offer_action(self, name: str, help_value: Any | None) -> None:
        """Republish the ``<action agent name help>`` fact for ``name``, or with ``None``
        withdraw it (``Agent.add_action`` / ``remove_action``)."""
        def change() -> None:
            old = self._offers.pop(name, None)
            if old is not None:
                turn.retract(old)
            if help_value is not None:
                self._offers[name] = turn.publish(
                    self.ds, action_fact(self.agent_id, name, help_value))
        self._fact_call(change)

    def _fact_call(self, action: Callable[[], Any]) -> Any:
        active = turn.active
        if active is not None and active._facet.actor is self.facet.actor:
            return action()  # inside one of the agent's turns: scoped to its facet
        if self.core.on_runtime_thread():
            return self._in_turn(self.facet, action)
        return trio.from_thread.run_sync(lambda: self._in_turn(self.facet, action),
                                         trio_token=self.core.token)
