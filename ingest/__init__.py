"""The pure acceptance core of the webhook: recognise, validate and split payloads."""
