"""Generated image trees for the demo, the tests and the benchmarks (deterministic content)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle", "cross")


def draw(shape: str, rng: np.random.Generator, size: int = 32) -> Image.Image:
    """One image of `shape` at a random place and colour on a noisy background."""
    background = rng.integers(0, 80, size=(size, size, 3), dtype=np.uint8)
    image = Image.fromarray(background, "RGB")
    pen = ImageDraw.Draw(image)
    r = int(rng.integers(6, 12))
    cx, cy = (int(v) for v in rng.integers(r, size - r, size=2))
    color = tuple(int(v) for v in rng.integers(120, 256, size=3))
    if shape == "circle":
        pen.ellipse((cx - r, cy - r, cx + r, cy + r), fill=color)
    elif shape == "square":
        pen.rectangle((cx - r, cy - r, cx + r, cy + r), fill=color)
    elif shape == "triangle":
        pen.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=color)
    else:
        pen.rectangle((cx - r, cy - 2, cx + r, cy + 2), fill=color)
        pen.rectangle((cx - 2, cy - r, cx + 2, cy + r), fill=color)
    return image


def generate_tree(root: Path, per_label: int) -> None:
    """Write `root/<shape>/<n>.png` (deterministic; kept when already complete)."""
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        folder = root / shape
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_label):
            image = draw(shape, rng)
            path = folder / f"{i:04d}.png"
            if not path.exists():
                image.save(path)


def write_digits(root: Path, size: int = 32) -> int:
    """scikit-learn's 1,797 handwritten digits (8x8, shipped with the package) as `root/<digit>/<n>.png`."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    for index, (pixels, target) in enumerate(zip(digits.images, digits.target)):
        path = root / str(target) / f"{index:04d}.png"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            image = Image.fromarray((pixels * (255.0 / 16.0)).astype(np.uint8), "L")
            image.resize((size, size), Image.BILINEAR).save(path)
    return len(digits.images)
