"""The question adapter: fine-tune the top layers of the packaged MiniLM, question side only, so
that a question's vector lands near the frozen index vectors of the sentences that answer it.

The index stays as built (its chunk and sentence vectors are not touched); answering encodes the
question once more with the adapter (``Answerer.question_vector``) for the ``dense_tuned``
feature. Loss: softmax over a question's candidate sentences (temperature ``TAU``), the gold
evidence as target; seeded, CPU, minutes per run on all of train. Only the tuned tensors are
saved (float16 safetensors), as overrides of the packaged weights. ``rag train`` fits it six
times (five folds, then all of train); each fit is cached by what it was fitted on, so a stopped
run resumes after the fits it finished."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import numpy as np

LAYERS = 6  # all-MiniLM-L6-v2
TUNED_LAYERS = 2  # the top layers that are fine-tuned; the rest and the embeddings stay frozen
EPOCHS = 2
LR = 3e-5
TAU = 0.05
BATCH = 8
MAX_LEN = 64


def _tuned(name: str) -> bool:
    return any(name.startswith(f"encoder.layer.{i}.") for i in range(LAYERS - TUNED_LAYERS, LAYERS))


class TorchQuestionEncoder:
    """The packaged MiniLM on torch (mean pooling, normalised), with ``weights`` overriding its
    tensors; trainable top layers when ``train`` is set."""

    def __init__(self, weights: dict[str, np.ndarray] | None = None, seed: int = 0):
        import torch
        from transformers import AutoModel, AutoTokenizer

        from index.encoder import model_dir

        torch.manual_seed(seed)
        self.torch = torch
        self.tok = AutoTokenizer.from_pretrained(str(model_dir()))
        self.model = AutoModel.from_pretrained(str(model_dir()))
        if weights:
            state = self.model.state_dict()
            for name, w in weights.items():
                state[name] = torch.from_numpy(w.astype(np.float32))
            self.model.load_state_dict(state)
        for name, p in self.model.named_parameters():
            p.requires_grad = _tuned(name)

    def encode(self, texts: list[str]):
        enc = self.tok(texts, padding=True, truncation=True, max_length=MAX_LEN, return_tensors="pt")
        h = self.model(**enc).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).float()
        v = (h * m).sum(1) / m.sum(1)
        return self.torch.nn.functional.normalize(v, dim=-1)

    def vectors(self, texts: list[str]) -> np.ndarray:
        self.model.eval()
        with self.torch.no_grad():
            out = [self.encode(texts[i : i + 64]).numpy() for i in range(0, len(texts), 64)]
        return np.concatenate(out) if out else np.zeros((0, 384), np.float32)

    def weights(self) -> dict[str, np.ndarray]:
        """The tuned tensors, rounded to float16 as they are saved."""
        return {n: p.detach().numpy().astype(np.float16) for n, p in self.model.named_parameters() if _tuned(n)}


def adapter_key(questions: list[str], vectors: list[np.ndarray], gold: list[np.ndarray], seed: int) -> str:
    """What a fitted adapter depends on, hashed: the triples, the seed, the recipe and the base model."""
    from index.encoder import model_dir

    recipe = {"tuned_layers": TUNED_LAYERS, "epochs": EPOCHS, "lr": LR, "tau": TAU, "batch": BATCH,
              "max_len": MAX_LEN, "seed": seed, "model": str(model_dir().name)}
    h = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode())
    for q, v, g in zip(questions, vectors, gold, strict=True):
        h.update(json.dumps(q).encode())
        h.update(np.ascontiguousarray(v, np.float32).tobytes())
        h.update(np.asarray(g, bool).tobytes())
    return h.hexdigest()[:24]


def fit_adapter(questions: list[str], vectors: list[np.ndarray], gold: list[np.ndarray], seed: int,
                cache: Path | None = None, progress: bool = False, desc: str = "question adapter") -> dict[str, np.ndarray]:
    """Fine-tune on (question, candidate sentence vectors, gold mask) triples; questions without a
    gold candidate are skipped. Returns the tuned tensors (float16). With ``cache`` (a directory),
    an adapter fitted before on the same triples, seed and recipe is loaded from there instead of
    fitted again, and a new one is saved there."""
    saved = Path(cache) / f"adapter-{adapter_key(questions, vectors, gold, seed)}.safetensors" if cache else None
    if saved is not None and saved.exists():
        from safetensors.numpy import load_file

        return load_file(str(saved))
    weights = _fit(questions, vectors, gold, seed, progress, desc)
    if saved is not None:
        save_adapter(weights, saved)
    return weights


def _fit(questions: list[str], vectors: list[np.ndarray], gold: list[np.ndarray], seed: int,
         progress: bool = False, desc: str = "question adapter") -> dict[str, np.ndarray]:
    from tqdm import tqdm

    enc = TorchQuestionEncoder(seed=seed)
    torch = enc.torch
    torch.set_num_threads(max(1, torch.get_num_threads()))
    data = [(q, torch.from_numpy(v), torch.from_numpy(g.astype(np.float32)))
            for q, v, g in zip(questions, vectors, gold) if len(v) and g.any()]
    params = [p for p in enc.model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=LR, weight_decay=0.01)
    rng = random.Random(seed)
    enc.model.train()
    bar = tqdm(total=EPOCHS * -(-len(data) // BATCH), desc=desc, unit="batch", disable=not progress, leave=False)
    for _ in range(EPOCHS):
        rng.shuffle(data)
        for b in range(0, len(data), BATCH):
            batch = data[b : b + BATCH]
            qv = enc.encode([q for q, _, _ in batch])
            loss = 0
            for j, (_, V, g) in enumerate(batch):
                logp = torch.log_softmax(V @ qv[j] / TAU, 0)
                loss = loss - (logp * g).sum() / g.sum()
            (loss / len(batch)).backward()
            opt.step()
            opt.zero_grad()
            bar.update()
    bar.close()
    return enc.weights()


def tuned_cosines(weights: dict[str, np.ndarray], questions: list[str], vectors: list[np.ndarray]) -> list[np.ndarray]:
    """cos(adapter vector of each question, each of its candidate sentence vectors)."""
    qv = TorchQuestionEncoder(weights).vectors(questions)
    return [v @ q for q, v in zip(qv, vectors)]


def save_adapter(weights: dict[str, np.ndarray], path: Path) -> None:
    from safetensors.numpy import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: np.ascontiguousarray(v) for k, v in weights.items()}, str(tmp))
    tmp.chmod(0o644)
    tmp.replace(path)
