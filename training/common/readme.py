"""README model-table rows regenerated from results files, so the table cannot drift from the runs."""

from __future__ import annotations

from pathlib import Path


def update_readme(path: Path, rows: list[str], replace: tuple[str, ...]) -> None:
    """Swap the README table rows naming the given models for `rows` (other lines untouched)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    idx = [i for i, line in enumerate(lines) if any(line.startswith(f"| `{n}`") for n in replace)]
    if not idx:
        raise ValueError(f"no README rows for {replace}")
    lines = lines[: idx[0]] + rows + [line for i, line in enumerate(lines[idx[0] :], idx[0]) if i not in idx]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
