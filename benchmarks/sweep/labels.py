"""Point labels on a scatter plot that do not cover each other: each label, in the order given (most important
first), takes the first of a few positions around its point where it overlaps no label placed before it and stays
inside the axes; a label with no such position is left out (the report's table beside the plot lists every
point)."""
from __future__ import annotations

# offsets from the point in typographic points, with the text's alignment there
POSITIONS = ((4, 3, "left", "bottom"), (4, -3, "left", "top"), (-4, 3, "right", "bottom"),
             (-4, -3, "right", "top"), (0, 6, "center", "bottom"), (0, -6, "center", "top"))


def place_labels(ax, xs, ys, texts, fontsize: float = 6) -> int:
    """Annotate the points (xs, ys) with texts where they fit (see the module doc); the number placed. Call after
    the axes' limits are final (the positions are measured on the drawn figure)."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    placed = []
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
    return len(placed)
