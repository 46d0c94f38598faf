"""Word-wrapped styled text for the cards (Pillow): runs of ``(text, font, fill, highlight)``
become lines of words fitted to a width, drawn with a highlight box behind highlighted words."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import ImageDraw, ImageFont

__all__ = ["Colour", "Font", "Run", "TextBlock", "line_height", "text_block"]

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
Colour = tuple[int, int, int]
#: ``(text, font, fill, highlighted)``.
Run = tuple[str, Font, Colour, bool]
HIGHLIGHT_BG: Colour = (253, 230, 253)


@dataclass(frozen=True)
class _Word:
    text: str
    font: Font
    fill: Colour
    space_before: bool
    highlight: bool = False


def _words(runs: Sequence[Run]) -> list[_Word]:
    """Split styled runs ``(text, font, fill, highlight)`` into words, remembering spaces."""
    words: list[_Word] = []
    pending_space = False
    for text, font, fill, highlight in runs:
        for token in re.findall(r"\s+|\S+", text):
            if token.isspace():
                pending_space = True
                continue
            words.append(_Word(token, font, fill, pending_space and bool(words), highlight))
            pending_space = False
    return words


def _wrap(words: Sequence[_Word], width: int) -> list[list[tuple[_Word, int]]]:
    """Greedy lines of ``(word, x offset)``; a word wider than a line is cut by characters."""
    lines: list[list[tuple[_Word, int]]] = [[]]
    x = 0
    for word in words:
        space = int(word.font.getlength(" ")) if word.space_before else 0
        length = int(word.font.getlength(word.text))
        if lines[-1] and x + space + length > width:
            lines.append([])
            x, space = 0, 0
        if length > width:  # cut an over-long token (ids, long numbers) by characters
            piece = ""
            for char in word.text:
                if word.font.getlength(piece + char) > width - x and piece:
                    lines[-1].append((_Word(piece, word.font, word.fill, False, word.highlight),
                                      x))
                    lines.append([])
                    x, piece = 0, ""
                piece += char
            word = _Word(piece, word.font, word.fill, False, word.highlight)
            length = int(word.font.getlength(piece))
        lines[-1].append((word, x + space))
        x += space + length
    return [line for line in lines if line]


def line_height(font: Font) -> int:
    """Line height for ``font``: 1.4 × its size, pixels."""
    size = getattr(font, "size", 12)
    return int(size * 1.4 + 0.5)


@dataclass(frozen=True)
class TextBlock:
    """Wrapped lines with their height, drawn at a given top-left."""

    lines: list[list[tuple[_Word, int]]]
    heights: list[int]

    @property
    def height(self) -> int:
        """Total height, pixels."""
        return sum(self.heights)

    def draw(self, draw: ImageDraw.ImageDraw, left: int, top: int) -> None:
        """Draw the lines with their top-left at ``(left, top)``."""
        y = top
        for line, height in zip(self.lines, self.heights, strict=True):
            for word, x in line:
                if word.highlight:
                    box = draw.textbbox((left + x, y), word.text, font=word.font)
                    draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2),
                                   fill=HIGHLIGHT_BG)
                draw.text((left + x, y), word.text, font=word.font, fill=word.fill)
            y += height


def text_block(runs: Sequence[Run], width: int) -> TextBlock:
    """``runs`` wrapped to ``width`` pixels."""
    lines = _wrap(_words(runs), width)
    heights = [max(line_height(word.font) for word, _ in line) for line in lines]
    return TextBlock(lines, heights)
