"""Connecting Genesys Cloud to the webhook through its Amazon EventBridge integration.

`python -m ops genesys connect` creates or updates the Genesys half (docs/connect-genesys.md);
`infra/aws/genesys-eventbridge.yaml` is the AWS half. `plan` is pure, `service` runs a plan
through the `IntegrationsPort`, and `adapters.genesys_cloud` implements that port with the
official Genesys Cloud SDK (imported only when the command runs); the credentials are read by
`adapters.genesys_settings`.
"""
