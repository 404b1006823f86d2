"""A private RabbitMQ broker for the tests: the helper lives in the package now
(``dataspace_agency.compare.rabbitmq``, also used by ``dataspace-agency compare
--rabbitmq start``); this module keeps the tests' imports working."""

from dataspace_agency.compare.rabbitmq import *  # noqa: F401,F403
from dataspace_agency.compare.rabbitmq import (  # noqa: F401  (private names tests use)
    CTL_DIST_PORTS, HOST, RABBITMQ_BIN, RABBITMQ_SERVER, RABBITMQCTL, BrokerError,
    RabbitMQBroker, _free_ports, _pid_alive, _port_free, _port_open, _tail,
    private_broker, rabbitmq_installed)
