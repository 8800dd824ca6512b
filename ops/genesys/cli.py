"""`python -m ops genesys connect`: the Genesys half of the Amazon EventBridge route.

Credentials come from the environment (`adapters.genesys_settings`). Exit codes: 0 done (or nothing
to do), 2 bad settings or arguments, 4 the integration is in a state this must not change,
5 Genesys Cloud did not answer (or kept rate-limiting), 7 credentials or a permission refused,
1 any other refusal.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console

from adapters.errors import Unreachable
from adapters.genesys_cloud import AmbiguousName, Denied, GenesysError, RateLimited
from adapters.genesys_settings import GenesysSettings, genesys_settings
from adapters.settings import SettingsError
from ops.errors import SETTINGS_EXIT, UNREACHABLE_EXIT, OpsError
from ops.genesys import plan as planning
from ops.genesys.service import IntegrationsPort, Outcome, connect

app = typer.Typer(
    help="Connect Genesys Cloud to the webhook (Amazon EventBridge integration).",
    no_args_is_help=True,
)
console = Console()
err_console = Console(stderr=True)

GENESYS_EXITS: tuple[tuple[type[GenesysError], int], ...] = (
    (AmbiguousName, 4),
    (RateLimited, 5),
    (Denied, 7),
)
"""How the command ends on Genesys Cloud's refusals; any other ends with 1."""


def genesys_exit(error: GenesysError) -> int:
    """The exit code of a Genesys Cloud refusal."""
    return next((code for kind, code in GENESYS_EXITS if isinstance(error, kind)), 1)


def _sdk_port(settings: GenesysSettings) -> IntegrationsPort:
    # Imported here: the SDK takes seconds to import and only this command needs it.
    from adapters.genesys_cloud import GenesysCloudIntegrations

    return GenesysCloudIntegrations.login(settings, on_wait=_waiting)


def _waiting(endpoint: str, seconds: float) -> None:
    err_console.print(
        f"[yellow]rate-limited[/] on {endpoint}: waiting {seconds:.1f} s (Retry-After)",
        highlight=False,
    )


@app.command("connect")
def connect_command(
    *,
    aws_account_id: Annotated[
        str, typer.Option("--aws-account-id", help="The 12-digit AWS account to publish to.")
    ],
    aws_region: Annotated[
        str, typer.Option("--aws-region", help="The AWS region of the partner event source.")
    ],
    name: Annotated[
        str, typer.Option("--name", help="The integration's name; it is found by this name.")
    ] = planning.DEFAULT_NAME,
    suffix: Annotated[
        str,
        typer.Option("--suffix", help="Event source suffix: the last part of the source's name."),
    ] = planning.DEFAULT_SUFFIX,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would change; change nothing.")
    ] = False,
    allow_source_change: Annotated[
        bool,
        typer.Option(
            "--allow-source-change",
            help="Let an existing integration move to another AWS account, region or suffix.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Create or update the EventBridge integration with every detail topic the transform reads."""
    try:
        want = planning.desired(
            aws_account_id=aws_account_id,
            aws_region=aws_region,
            name=name,
            event_source_suffix=suffix,
        )
        settings = genesys_settings(os.environ)
        port = _sdk_port(settings)
        outcome = connect(port, want, dry_run=dry_run, allow_source_change=allow_source_change)
    except OpsError as e:
        raise _fail(e, e.exit_code) from e
    except GenesysError as e:
        raise _fail(e, genesys_exit(e)) from e
    except SettingsError as e:
        raise _fail(e, SETTINGS_EXIT) from e
    except Unreachable as e:
        raise _fail(e, UNREACHABLE_EXIT) from e
    if as_json:
        typer.echo(orjson.dumps(_as_json(outcome), option=orjson.OPT_INDENT_2).decode())
    else:
        _print(outcome)


def _fail(error: Exception, exit_code: int) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
    return typer.Exit(exit_code)


def _as_json(outcome: Outcome) -> dict[str, Any]:
    integration = outcome.integration
    return {
        "dry_run": outcome.dry_run,
        "changed": not outcome.dry_run and not outcome.plan.is_noop,
        "steps": outcome.plan.steps(),
        "integration": None
        if integration is None
        else {
            "id": integration.id,
            "name": integration.name,
            "intended_state": integration.intended_state,
            "reported_state": integration.reported_state,
        },
        "partner_event_source": outcome.partner_event_source,
    }


def _print(outcome: Outcome) -> None:
    steps = outcome.plan.steps()
    integration = outcome.integration
    label = "would" if outcome.dry_run else "did"
    if not steps:
        console.print("nothing to change: the integration is as configured here", highlight=False)
    else:
        console.print(f"[bold]{label}:[/]", highlight=False)
        for step in steps:
            console.print(f"  {step}", highlight=False, soft_wrap=True)
    if integration is not None:
        console.print(
            f"integration {integration.name!r} ({integration.id}): intended "
            f"{integration.intended_state}, reported {integration.reported_state}",
            highlight=False,
            soft_wrap=True,
        )
    console.print(
        f"partner event source: {outcome.partner_event_source}", highlight=False, soft_wrap=True
    )
    console.print(
        "next: deploy infra/aws/genesys-eventbridge.yaml with "
        f"PartnerEventSourceName={outcome.partner_event_source} (docs/connect-genesys.md)",
        highlight=False,
        soft_wrap=True,
    )
