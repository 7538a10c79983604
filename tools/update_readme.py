#!/usr/bin/env python3
"""Refreshes the README's code blocks from the files they show.

A block is marked with `<!-- snippet: PATH -->` on the line before its ```cpp
fence; its content is replaced by PATH's. tests/docs/readme_test.cpp fails
when the README and the files disagree, so run this after editing a snippet.
"""
import pathlib
import re

root = pathlib.Path(__file__).resolve().parent.parent
readme = root / "README.md"
text = readme.read_text()
pattern = re.compile(r"(<!-- snippet: (\S+) -->\n```cpp\n)(.*?)(```)", re.S)
text = pattern.sub(lambda m: m.group(1) + (root / m.group(2)).read_text() + m.group(4), text)
readme.write_text(text)
