"""Write the time grid's placement classes into static/app.css (run after changing the grid's
size limits in core/grid.py): `python -m scripts.grid_css`; a test checks the stylesheet.
"""

from __future__ import annotations

from pathlib import Path

from webapp.dashboard.grid import CSS_BEGIN, CSS_END, placement_css

STYLESHEET = Path(__file__).resolve().parent.parent / "static" / "app.css"


def main() -> None:
    """Replace the generated section of the stylesheet, or append it."""
    text = STYLESHEET.read_text()
    if CSS_BEGIN in text:
        before, _, rest = text.partition(CSS_BEGIN)
        _, _, after = rest.partition(CSS_END + "\n")
        text = before + placement_css() + after
    else:
        text += placement_css()
    STYLESHEET.write_text(text)


if __name__ == "__main__":
    main()
