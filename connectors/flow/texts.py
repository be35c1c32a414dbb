"""What the flows say themselves, the same on every platform (in neutral rich text)."""

from __future__ import annotations

from assistant.rich import RichText, code, rich

APOLOGY = rich(
    "Sorry, something went wrong while answering; the error was logged. Please try again."
)
THANKS = rich("Thanks, your feedback on this answer is recorded.")
DIGEST_GONE = rich("This card's digest is no longer stored.")
QA_ALREADY = rich("All Q&A is already in this card's thread.")


def not_enabled(platform: str) -> RichText:
    """The answer in a channel outside the platform's allowlist."""
    setting = f"{platform.upper()}_ALLOWED_CHANNELS"
    return rich(
        "paperbot is not enabled in this channel; an admin can add it to ", code(setting), "."
    )
