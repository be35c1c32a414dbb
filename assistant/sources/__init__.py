"""Where papers come from. Every source is a `PaperSource`."""

from assistant.sources.base import PaperSource, SourceItem, load_text

__all__ = ["PaperSource", "SourceItem", "load_text"]
