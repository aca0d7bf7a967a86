"""`segment-sync serve-webhooks`: the webhook receiver, configured from the settings."""

from __future__ import annotations

import click

from segment_sync.cli.options import load_or_fail, settings_option


@click.command("serve-webhooks")
@settings_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8703, show_default=True)
@click.option("--insecure", is_flag=True, help="Accept unsigned webhooks (no shared secret set).")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Receiver processes sharing the port (one per CPU core serves the most).",
)
def serve_webhooks(
    settings_file: str | None, host: str, port: int, insecure: bool, workers: int
) -> None:
    """Receive Segment "Webhooks (Actions)" at POST /segment into the durable buffer."""
    import os

    from segment_sync.inbound.http_limits import ReceiverLimits
    from segment_sync.inbound.receiver import run_receiver

    loaded = load_or_fail(settings_file)
    inbound = loaded.inbound
    secret = loaded.webhook_secret()
    token = None
    if inbound.webhook_token_env:
        token = os.environ.get(inbound.webhook_token_env) or None
        if token is None:
            raise click.ClickException(
                f"inbound.webhook_token_env names {inbound.webhook_token_env}, which is not set: "
                f"export {inbound.webhook_token_env}=<the token in the destination's Headers "
                "field>, or remove the setting"
            )
    if not secret and not token and not insecure:
        raise click.ClickException(
            f"no webhook secret: export {inbound.webhook_secret_env}=<the shared secret "
            "set in Segment's Webhooks (Actions) destination>, or pass --insecure to accept "
            "unsigned requests"
        )
    limits = ReceiverLimits(
        header_timeout_s=inbound.read_timeout_s,
        body_timeout_s=inbound.read_timeout_s,
        max_connections=inbound.max_connections,
        max_unverified_bytes=inbound.max_unverified_bytes,
    )
    run_receiver(
        inbound.buffer_url,
        secret,
        host,
        port,
        insecure,
        inbound.max_body_bytes,
        webhook_token=token,
        allow_unverified_batches=inbound.allow_unverified_batches,
        limits=limits,
        secret_env=inbound.webhook_secret_env,
        workers=workers,
    )
