"""A local Event Hubs emulator: an AMQP 1.0 server the real azure-eventhub SDK works against.

Start it (the local stack runs exactly this; see `__main__` for every option):

    python -m devstack.eventhubs --config devstack/eventhubs.config.json \\
        --host 127.0.0.1 --port 5672 --health-port 5300 --data-dir .devstack/eventhubs

Connect with the official emulator connection string:

    Endpoint=sb://localhost;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;

(`sb://127.0.0.1:PORT` for another port). Wait for it with `wait_healthy(host, port, timeout)`
on the health port (`GET /health`, JSON with hubs and partitions).

Modules, outside in: `server` (process), `connection` (proton engine per socket), `links`
(cbs, management, producer, consumer handlers), `frames` (the frame fixes the SDK needs),
`broker` (hubs, receivers, owner levels), `storage` (durable partition logs), `messages`
(annotation stamping), `auth` (shared access signatures and claims), `management` ($cbs and
$management answers), `positions`, `addresses`, `config`, `amqp_codec`, `health`.
"""

from devstack.eventhubs.health import wait_healthy

__all__ = ["wait_healthy"]
