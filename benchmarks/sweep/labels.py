"""Point labels on a scatter plot that do not cover each other or the points: each label, in the order given (most
important first), takes the first of a few positions around its point where it overlaps no label placed before it
and no point of the plot, and stays inside the axes; a label with no such position is left out (the report's table
beside the plot lists every point)."""
from __future__ import annotations

from matplotlib.transforms import Bbox

# offsets from the point in typographic points, with the text's alignment there
POSITIONS = ((4, 3, "left", "bottom"), (4, -3, "left", "top"), (-4, 3, "right", "bottom"),
             (-4, -3, "right", "top"), (0, 6, "center", "bottom"), (0, -6, "center", "top"))


def place_labels(ax, xs, ys, texts, points=None, fontsize: float = 6, radius: float = 3) -> int:
    """Annotate the points (xs, ys) with texts where they fit (see the module doc); ``points``: (x, y) arrays of
    every point of the plot to keep clear (default: the labelled ones), each a square of ``radius`` pixels. The
    number placed. Call after the axes' limits are final (the positions are measured on the drawn figure)."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    px, py = points if points is not None else (xs, ys)
    centres = ax.transData.transform(list(zip(px, py))) if len(px) else []
    placed = [Bbox.from_extents(x - radius, y - radius, x + radius, y + radius) for x, y in centres]
    for x, y, text in zip(xs, ys, texts):
        for dx, dy, ha, va in POSITIONS:
            note = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                               fontsize=fontsize)
            box = note.get_window_extent(renderer)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if inside and not any(box.overlaps(b) for b in placed):
                placed.append(box)
                break
            note.remove()
    return len(placed) - len(centres)
