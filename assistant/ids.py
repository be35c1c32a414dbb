"""Paper keys: arXiv IDs without their version, or a stable key for papers not on arXiv.

>>> parse_arxiv_id("https://arxiv.org/pdf/2407.08608v2")
ArxivId(id='2407.08608', version=2)
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from assistant.errors import InvalidInputError

# New-style IDs (2007 onwards): YYMM.NNNN (until 2014) or YYMM.NNNNN, optional version.
_NEW_ID = r"(?P<new>\d{2}(?:0[1-9]|1[0-2])\.\d{4,5})"
# Old-style IDs: archive(.subject)/YYMMNNN, e.g. hep-th/9901001, cs.LG/0703001.
_OLD_ID = r"(?P<old>[a-z][a-z\-]+(?:\.[A-Z]{2})?/\d{7})"
_VERSION = r"(?:v(?P<version>\d+))?"
_BARE = re.compile(rf"^(?:arxiv:)?(?:{_NEW_ID}|{_OLD_ID}){_VERSION}$", re.IGNORECASE)
_URL_PATH = re.compile(
    rf"^/(?:abs|pdf|html|format)/(?:{_NEW_ID}|{_OLD_ID}){_VERSION}(?:\.pdf)?/?$", re.IGNORECASE
)
_ARXIV_HOSTS = {"arxiv.org", "www.arxiv.org", "export.arxiv.org"}
_TRACKING_PARAMS = re.compile(r"^(utm_|ref$|fbclid$|gclid$)")


@dataclass(frozen=True)
class ArxivId:
    """An arXiv identifier split into its versionless key and optional version."""

    id: str
    version: int | None = None

    @property
    def versioned(self) -> str:
        return f"{self.id}v{self.version}" if self.version else self.id


def _valid_new_id(ident: str) -> bool:
    """Four-digit numbers were used until 2014 (YYMM.NNNN), five from 2015 on."""
    yymm, number = ident.split(".")
    return (len(number) == 4) == (yymm < "1501")


def _from_match(match: re.Match[str]) -> ArxivId | None:
    version = match.group("version")
    key = match.group("new")
    if key is not None and not _valid_new_id(key):
        return None
    if key is None:
        archive, number = match.group("old").split("/")
        key = f"{archive.split('.')[0].lower()}{_subject(archive)}/{number}"
    return ArxivId(key, int(version) if version else None)


def _subject(archive: str) -> str:
    parts = archive.split(".")
    return f".{parts[1].upper()}" if len(parts) > 1 else ""


def find_arxiv_id(text: str) -> ArxivId | None:
    """Return the arXiv ID in a bare ID or an arXiv URL, or None if `text` names none."""
    text = text.strip()
    bare = _BARE.match(text)
    if bare:
        return _from_match(bare)
    parts = urlsplit(text if "://" in text else f"https://{text}")
    if parts.hostname not in _ARXIV_HOSTS:
        return None
    path = _URL_PATH.match(parts.path)
    return _from_match(path) if path else None


def parse_arxiv_id(text: str) -> ArxivId:
    """Parse an arXiv ID or URL (abs, pdf, versioned); raise InvalidInputError otherwise."""
    found = find_arxiv_id(text)
    if found is None:
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise InvalidInputError(
            f"{shown!r} is not an arXiv ID or URL. Expected something like 2407.08608, "
            "2407.08608v2 or https://arxiv.org/abs/2407.08608."
        )
    return found


def canonical_url(url: str) -> str:
    """Normalise a URL so that trivially different spellings give the same key."""
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        raise InvalidInputError(f"{url!r} is not an absolute URL.")
    host = (parts.hostname or "").lower().removeprefix("www.")
    query = "&".join(
        q for q in parts.query.split("&") if q and not _TRACKING_PARAMS.match(q.split("=")[0])
    )
    path = parts.path.rstrip("/") or "/"
    return urlunsplit(("https", host, path, query, ""))


def paper_key(url_or_id: str) -> str:
    """The stable key of a paper: its versionless arXiv ID, else `url:` + a hash of its URL."""
    arxiv = find_arxiv_id(url_or_id)
    if arxiv is not None:
        return arxiv.id
    canon = canonical_url(url_or_id)
    digest = hashlib.sha1(canon.encode()).hexdigest()[:12]
    host = urlsplit(canon).hostname or "web"
    return f"web:{host}:{digest}"


def is_arxiv_key(key: str) -> bool:
    return not key.startswith("web:")


def abs_url(arxiv_id: str) -> str:
    return f"https://arxiv.org/abs/{arxiv_id}"


def pdf_url(arxiv_id: ArxivId | str) -> str:
    ident = arxiv_id.versioned if isinstance(arxiv_id, ArxivId) else arxiv_id
    return f"https://arxiv.org/pdf/{ident}"
