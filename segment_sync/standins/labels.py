"""What each stand-in calls itself and serves; imports nothing, so its `--help` starts fast."""

SEGMENT_STANDIN_LABEL = "Segment Tracking API LOCAL STAND-IN (not Segment, never production)"
SEGMENT_PUBLIC_API_STANDIN_LABEL = (
    "Segment Public API LOCAL STAND-IN (not Segment, never production)"
)
ANTAVO_STANDIN_LABEL = "Antavo Events API LOCAL STAND-IN (not Antavo, never production)"
SEGMENT_REGIONS = ("us", "eu")
