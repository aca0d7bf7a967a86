"""segment-sync: two-way sync between a loyalty platform and Twilio Segment."""

__version__ = "0.1.0"
LIBRARY_NAME = "segment-sync"
