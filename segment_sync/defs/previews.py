"""The mapping preview as a job for the launchpad: the Antavo request a mapping would make.

No `from __future__ import annotations` here: Dagster resolves op config types at runtime.
"""

import dagster as dg

from segment_sync.defs.resources import SettingsResource
from segment_sync.dry_runs import PreviewError, mapping_previews, preview_lines
from segment_sync.inbound.item_gate import UnreadableEvent, decode_event
from segment_sync.inbound.mapping.preview import Candidate


class MappingPreviewConfig(dg.Config):
    """`mapping`: one mapping's name (default: every one). `event_json`: a Segment event as JSON
    (default: the newest buffered event the mapping's trigger matches)."""

    mapping: str | None = None
    event_json: str | None = None


def _given_event(text: str | None) -> Candidate | None:
    if text is None:
        return None
    try:
        payload = decode_event(text)
    except UnreadableEvent as exc:
        raise dg.Failure(description=f"event_json: {exc}", allow_retries=False) from None
    return Candidate("the run's config", payload)


@dg.op(description="Show the event each mapping would use and the exact Antavo request; no send.")
def preview_inbound_mappings(
    context: dg.OpExecutionContext, config: MappingPreviewConfig, settings: SettingsResource
) -> dg.Output[int]:
    given = _given_event(config.event_json)
    try:
        previews = mapping_previews(settings.load(), config.mapping, given)
    except PreviewError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    lines = [line for p in previews for line in preview_lines(p)]
    for line in lines:
        context.log.info(line)
    with_request = sum(1 for p in previews if p.request is not None)
    text = "\n".join(lines)
    return dg.Output(
        with_request,
        metadata={
            "mappings": dg.MetadataValue.int(len(previews)),
            "mappings_with_a_request": dg.MetadataValue.int(with_request),
            "preview": dg.MetadataValue.md(f"```\n{text}\n```"),
        },
    )


@dg.job(
    description='Mapping preview (Segment\'s "Load event from source" and "Test mapping"): '
    "the event and the exact Antavo request each mapping would make; nothing is sent."
)
def mappings_preview_job() -> None:
    preview_inbound_mappings()
