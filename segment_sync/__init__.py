"""segment-sync: two-way sync between a loyalty platform and Twilio Segment."""

import os

__version__ = "0.1.0"
LIBRARY_NAME = "segment-sync"

# Arrow's default pool (mimalloc) keeps freed pages: a long outbound run's memory crept up chunk
# after chunk. Read once, when pyarrow makes its first allocation, so it is set before any
# import of pyarrow; an operator's own choice stands (see segment_sync/native_memory.py).
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
