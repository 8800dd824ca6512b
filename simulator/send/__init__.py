"""The send phase: deliveries to ingest over HTTP or straight to the hub, retried as their
senders retry (Genesys' webhook, or an EventBridge API destination for EventBridge events).

`delivery` is the seam (`Target`, `Outcome`); `http_target` and `hub_target` the two targets
(their connections are the adapters': `adapters.webhook`, `adapters.eventhub_producer`);
`pacing` the open-loop schedule; `sending` what `send`, `replay` and `run` share; `sendlog` the
sender's log; `replay_source` what `replay` resends; `stats` and `send_report` the figures.
"""
