"""The RabbitMQ the AMQP backend is tested against: a real broker, driven with pika.

`amqp_url` is a private broker started once per session (tests/rabbitmq.py), or
$DATASPACE_AGENCY_AMQP_URL; without rabbitmq-server these tests skip, except in CI,
where they fail."""

from __future__ import annotations

import uuid

import pika
import pika.exceptions
import pytest


def _connect(url: str) -> pika.BlockingConnection:
    params = pika.URLParameters(url)
    params.connection_attempts = 3
    params.retry_delay = 0.5
    params.socket_timeout = 5
    return pika.BlockingConnection(params)


def _persistent() -> pika.BasicProperties:
    return pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent, content_type="application/json")


def test_publish_and_consume_with_publisher_confirms(amqp_url):
    conn = _connect(amqp_url)
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        queue = ch.queue_declare(queue="", exclusive=True).method.queue
        bodies = [f'{{"n": {i}}}'.encode() for i in range(3)]
        for body in bodies:
            # With confirms on, basic_publish returns only once the broker has confirmed
            # (it raises NackError/UnroutableError otherwise).
            ch.basic_publish("", queue, body, properties=_persistent(), mandatory=True)
        assert ch.queue_declare(queue=queue, passive=True).method.message_count == len(bodies)

        received = []
        for method, properties, body in ch.consume(queue, inactivity_timeout=5):
            assert method is not None, "timed out waiting for a message"
            assert properties.content_type == "application/json"
            received.append(body)
            ch.basic_ack(method.delivery_tag)
            if len(received) == len(bodies):
                break
        ch.cancel()
        assert received == bodies  # one queue, one consumer: in order
        assert ch.queue_declare(queue=queue, passive=True).method.message_count == 0
    finally:
        conn.close()


def test_unroutable_mandatory_publish_is_reported(amqp_url):
    conn = _connect(amqp_url)
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        with pytest.raises(pika.exceptions.UnroutableError):
            ch.basic_publish("", f"dsa-no-such-queue-{uuid.uuid4().hex}", b"lost", mandatory=True)
    finally:
        conn.close()


def test_durable_queue_keeps_a_persistent_message_across_a_broker_restart(rabbitmq_broker):
    url = rabbitmq_broker.amqp_url
    queue = f"dsa-restart-{uuid.uuid4().hex}"

    conn = _connect(url)
    ch = conn.channel()
    ch.confirm_delivery()
    ch.queue_declare(queue=queue, durable=True)
    ch.basic_publish("", queue, b'{"survives": true}', properties=_persistent(), mandatory=True)
    ch.queue_declare(queue=f"{queue}-transient", durable=False)

    url_after = rabbitmq_broker.restart()
    assert url_after == url  # same ports, same data directory

    # The connection from before the restart is dead, and says so when used.
    with pytest.raises(pika.exceptions.AMQPError):
        conn.process_data_events(time_limit=1)
        ch.queue_declare(queue=queue, passive=True)
    assert not conn.is_open

    conn = _connect(url)
    try:
        ch = conn.channel()
        assert ch.queue_declare(queue=queue, passive=True).method.message_count == 1
        method, properties, body = ch.basic_get(queue, auto_ack=True)
        assert method is not None and body == b'{"survives": true}'
        assert properties.delivery_mode == pika.DeliveryMode.Persistent.value
        ch.queue_delete(queue)
        # A non-durable queue does not survive the restart.
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
            ch.queue_declare(queue=f"{queue}-transient", passive=True)
        assert err.value.reply_code == 404
    finally:
        if conn.is_open:
            conn.close()
