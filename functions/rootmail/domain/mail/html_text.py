"""HTML to the text a person would read: line breaks where blocks and table rows end, cells apart by tabs,
links kept, scripts and styles dropped.
"""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser

_BLOCK_TAGS = frozenset(
    {"p", "div", "ul", "ol", "table", "hr", "blockquote", "pre", "section", "article", "header", "footer"}
    | {"h1", "h2", "h3", "h4", "h5", "h6"}
)
_LINE_TAGS = frozenset(("br", "tr", "li", "dt", "dd"))  # start a new line
_CELL_TAGS = frozenset(("td", "th"))
_SKIP_TAGS = frozenset(("script", "style", "title"))
_SPACES = re.compile(r"[ \t\r\n\f\v\xa0]+")
_INLINE_SPACES = re.compile(r"[ \t\f\v\xa0]+")
_BLANK_LINES = re.compile(r"\n{3,}")
# A tag with no `<` inside, and its attributes; the href of a link.
_UNCLOSED_REST_TAG = re.compile(r"<(/?)([a-zA-Z][^\s/<>]*)([^<>]*)>")
_HREF = re.compile(r"""(?:^|[\s/])href\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'<>]+))""", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_LONE_LT = re.compile(r"<(?![a-zA-Z/!?])")


class _HTMLText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.skip = 0
        self.href: str | None = None
        self.link_start = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self.skip += 1
        elif tag in _BLOCK_TAGS or tag in _LINE_TAGS:
            self.chunks.append("\n")
        elif tag in _CELL_TAGS:
            self.chunks.append("\t")
        elif tag == "a":
            self.href = next((v for k, v in attrs if k == "href" and v), None)
            self.link_start = len(self.chunks)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS or tag in _LINE_TAGS:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK_TAGS:
            self.chunks.append("\n")
        elif tag in _CELL_TAGS:
            self.chunks.append("\t")
        elif tag == "a" and self.href:
            # Links carry facts (displayId=..., reset links) that rules and identifiers look for.
            href = self.href.strip()
            label = "".join(self.chunks[self.link_start :])
            if href.lower().startswith(("http:", "https:", "mailto:")) and href not in label:
                self.chunks.append(f" <{href}>")
            self.href = None

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.chunks.append(_SPACES.sub(" ", data))

    def read_unclosed_rest(self) -> None:
        """Read what `feed` left: markup with no end (a tag, comment or declaration never closed) and all after it.

        `close()` would search each `<` after it to the end for the end of its markup: time quadratic in their
        number (CVE-2025-6069, in html.parser before 3.12.11 and 3.13.4). This reads each tag that ends before the
        next `<` as a tag and the rest as text, in one pass. A well-formed document leaves nothing."""
        rest, self.rawdata = self.rawdata, ""
        if self.cdata_elem is not None:  # in a <script> or <style> never closed, which close() does not show
            return
        pos = 0
        for tag in _UNCLOSED_REST_TAG.finditer(rest):
            self.handle_data(unescape(rest[pos : tag.start()]))
            closing, name, attributes = tag.groups()
            if closing:
                self.handle_endtag(name.lower())
            else:
                href = _HREF.search(attributes)
                self.handle_starttag(
                    name.lower(), [("href", next(g for g in href.groups() if g is not None))] if href else []
                )
            pos = tag.end()
        self.handle_data(unescape(rest[pos:]))


def html_to_text(html: str) -> str:
    parser = _HTMLText()
    # A `<` that starts no markup is text to html.parser, handed over a character at a time: as `&lt;`, with the
    # text around it.
    parser.feed(_LONE_LT.sub("&lt;", html))
    parser.read_unclosed_rest()
    return tidy("".join(parser.chunks))


def without_tags(document: str) -> str:
    """`_TAG.sub(" ", document)`, in linear time: no tag starts after the last `>`, and trying each `<` there
    would scan to the end."""
    end = document.rfind(">") + 1
    return _TAG.sub(" ", document[:end]) + document[end:]


def tidy(text: str) -> str:
    """Spaces folded and lines trimmed; a table's cells stay apart by a tab (text keeps no tab of its own), so a
    row reads as its columns."""
    lines = (_INLINE_SPACES.sub(_space_or_tab, line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _space_or_tab(run: re.Match[str]) -> str:
    return "\t" if "\t" in run.group() else " "


def plain_text(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
