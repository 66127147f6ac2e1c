"""Fit the reader (``rag/retrieval/reader.py``): the packaged MiniLM fine-tuned as a
cross-encoder on the train split, then exported to an int8 ONNX graph.

Pairs: for every train question, its gold evidence sentences (label 1) and the evidence model's
best ``NEGATIVES`` other candidates (label 0; hard negatives from the same articles and their
neighbours); an unanswerable question gives negatives only. Loss (``LOSS``): binary
cross-entropy on a linear head over MiniLM's mean-pooled output (the pooling the packaged model
was trained with), listwise plus a softmax cross-entropy over each question's pairs; the
embeddings stay frozen. Seeded; ``EPOCHS`` passes over the pairs."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import numpy as np

from rag import settings as C
from rag.retrieval.reader import encode_pairs, reader_tokenizer

EPOCHS = 2
LR = 4e-5  # encoder layers
HEAD_LR = 1e-3
BATCH = 16
NEGATIVES = 16  # hard negatives per question (16 ranked better than 8 on dev in a two-seed pilot: docs/answerer.md)
LOSS = "listwise"  # or "pointwise" (binary cross-entropy per pair only); listwise adds a softmax term per question
GROUPS = 2  # questions a batch, listwise (about BATCH pairs)
WARMUP = 0.1  # share of the steps with a rising learning rate
HIDDEN = 384
EMBEDDINGS = ("embeddings.",)
FROZEN = EMBEDDINGS  # MiniLM's layers that stay as packaged (not trained, not cached)


def cpu_computes_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """The CPU has bfloat16 instructions (AMX or AVX-512 BF16); elsewhere torch emulates them, slowly."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    flags = {w for line in text.splitlines() if line.startswith("flags") for w in line.split()[2:]}
    return bool(flags & {"amx_bf16", "avx512_bf16"})


# the forward pass under bfloat16 autocast where the CPU computes in it (weights, gradients and
# AdamW stay float32): 1.4-1.7x faster a batch here, the same dev top-1 as float32 in a pilot
# (docs/answerer.md, "Cheaper fits"); float32 elsewhere. The cache key and the manifest record which.
PRECISION = "bf16" if cpu_computes_bf16() else "fp32"


def frozen(name: str) -> bool:
    """``name`` (a parameter of MiniLM, or of the net as ``bert.…``) stays as packaged."""
    return name.removeprefix("bert.").startswith(FROZEN)


def training_pairs(rows, logits, texts) -> list[tuple[str, str, float]]:
    """(question, reader text, label) for each train question: its gold candidates and the
    ``NEGATIVES`` best-scored others. ``logits[i]`` scores ``rows[i]``'s candidates and
    ``texts[i]`` are their reader texts."""
    out = []
    for r, z, tx in zip(rows, logits, texts):
        if len(z) == 0:
            continue
        order = np.argsort(-np.asarray(z), kind="stable")
        neg = [int(j) for j in order if not r.y[j]][:NEGATIVES]
        out += [(r.reader_question, tx[j], 1.0) for j in np.flatnonzero(r.y)]
        out += [(r.reader_question, tx[j], 0.0) for j in neg]
    return out


def optimiser(net, steps: int, lr: float = LR, head_lr: float = HEAD_LR):
    """AdamW over ``net.bert`` (its trainable layers, ``lr``) and ``net.head`` (``head_lr``), with
    a learning rate rising over the first ``WARMUP`` share of ``steps``, then falling to 0."""
    import torch

    groups = [{"params": [p for p in net.bert.parameters() if p.requires_grad], "lr": lr},
              {"params": net.head.parameters(), "lr": head_lr}]
    opt = torch.optim.AdamW(groups, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / (WARMUP * steps)) * max(0.0, 1 - s / steps))
    return opt, sched


def minilm_net(seed: int, outputs: int, pooled: bool):
    """The packaged MiniLM with a linear head of ``outputs``, its embeddings frozen; torch is
    seeded first, so the head starts from the same weights on every run. ``pooled``: the head
    reads the mean of the tokens (one score per pair, the pooling MiniLM was trained with);
    otherwise every token (``outputs`` scores per token)."""
    import torch
    from transformers import AutoModel

    from index.encoder import model_dir

    torch.manual_seed(seed)

    class MiniLMNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = AutoModel.from_pretrained(str(model_dir()))
            self.head = torch.nn.Linear(HIDDEN, outputs)

        def forward(self, input_ids, attention_mask, token_type_ids):
            h = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state
            if not pooled:
                return self.head(h)
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            return self.head((h * m).sum(1) / m.sum(1)).squeeze(-1)

    net = MiniLMNet()
    for name, p in net.bert.named_parameters():
        p.requires_grad = not frozen(name)
    return net


CHECKPOINT_EVERY = 400  # batches between saves of a reader still being fitted (a few minutes on 2 cores)


def train_loop(net, data: list, loss, seed: int, progress: bool, desc: str, epochs: int = EPOCHS,
               lr: float = LR, head_lr: float = HEAD_LR, batch: int = BATCH,
               checkpoint: Path | None = None, every: int = CHECKPOINT_EVERY):
    """Fit ``net`` on ``data`` for ``epochs`` passes of shuffled batches of ``batch`` items
    (``loss``: a batch's loss tensor); returns it in eval mode.

    ``checkpoint``: a file where the fit is saved every ``every`` batches (trainable weights,
    optimiser and random state, as safetensors) and resumed from when it exists, so a stopped fit
    goes on where it was and ends as an unstopped one would; the caller deletes it once the
    fitted model is safe."""
    from tqdm import tqdm

    if len(data) < batch:
        raise ValueError(f"{desc}: {len(data)} training items, fewer than one batch of {batch}")
    per_epoch = len(data) // batch
    steps = epochs * per_epoch
    opt, sched = optimiser(net, steps, lr, head_lr)
    done = load_checkpoint(checkpoint, net, opt, sched, steps) if checkpoint is not None else 0
    rng = random.Random(seed)
    data = list(data)
    net.train()
    with tqdm(total=steps, initial=done, desc=desc, unit="batch", disable=not progress) as bar:
        for epoch in range(epochs):
            rng.shuffle(data)  # every epoch's shuffle, those done included: the order does not depend on resuming
            for i in range(per_epoch):
                step = epoch * per_epoch + i + 1
                if step <= done:
                    continue
                batch_loss = loss(data[i * batch : (i + 1) * batch])
                opt.zero_grad()
                batch_loss.backward()
                opt.step()
                sched.step()
                bar.update()
                if checkpoint is not None and step % every == 0 and step < steps:
                    save_checkpoint(checkpoint, net, opt, sched, step, steps)
    net.eval()
    return net


def save_checkpoint(path: Path, net, opt, sched, step: int, steps: int) -> None:
    """``net``'s trainable weights, ``opt``'s moments and torch's random state after ``step`` of
    ``steps`` batches, in one safetensors file written atomically (the rest as JSON metadata)."""
    import torch

    tensors = {f"net.{k}": v.detach() for k, v in net.named_parameters() if v.requires_grad}
    state = opt.state_dict()
    for i, moments in state["state"].items():
        for k, v in moments.items():
            tensors[f"opt.{i}.{k}"] = torch.as_tensor(v)
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {"step": step, "steps": steps, "params": sum(len(g["params"]) for g in opt.param_groups),
            "param_groups": state["param_groups"],
            "scheduler": {k: v for k, v in sched.state_dict().items() if k != "lr_lambdas"}}  # its lambdas are code
    save_tensors(tensors, path, {"checkpoint": json.dumps(meta)})


def save_tensors(tensors: dict, path: Path, metadata: dict[str, str] | None = None) -> None:
    """Torch ``tensors`` as one safetensors file at ``path``, written atomically (a temporary
    file renamed over it)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    tmp.replace(path)


def load_checkpoint(path: Path, net, opt, sched, steps: int) -> int:
    """Restore what ``save_checkpoint`` saved at ``path`` into ``net``, ``opt`` and ``sched``, and
    return the batches done; 0 when there is no checkpoint. A checkpoint of a fit with another
    number of steps or parameters is an error, not a silent restart."""
    import torch
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        return 0
    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["checkpoint"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    params = sum(len(g["params"]) for g in opt.param_groups)
    if meta["steps"] != steps or meta["params"] != params:
        raise ValueError(f"{path} is a checkpoint of another fit ({meta['steps']} batches, {meta['params']} "
                         f"parameters; this one has {steps} and {params}); delete it to start again")
    weights = {k[len("net."):]: v for k, v in tensors.items() if k.startswith("net.")}
    with torch.no_grad():
        for k, p in net.named_parameters():
            if p.requires_grad:
                p.copy_(weights[k])
    moments: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, i, name = k.split(".", 2)
            moments.setdefault(int(i), {})[name] = v
    opt.load_state_dict({"state": moments, "param_groups": meta["param_groups"]})
    sched.load_state_dict(meta["scheduler"] | {"lr_lambdas": [None] * len(opt.param_groups)})
    torch.set_rng_state(tensors["rng.torch"])
    return int(meta["step"])


def question_groups(pairs: list[tuple[str, str, float]]) -> list[list[tuple[str, str, float]]]:
    """``training_pairs`` cut into each question's run of pairs."""
    out: list[list[tuple[str, str, float]]] = []
    for p in pairs:
        if out and out[-1][0][0] == p[0]:
            out[-1].append(p)
        else:
            out.append([p])
    return out


CACHE_DIR = C.DATA_DIR / "train_cache"  # fitted readers and question adapters, by what they were fitted on (gitignored)


def fit_key(pairs: list[tuple[str, str, float]], seed: int) -> str:
    """What a fitted reader depends on, hashed: the pairs, the seed, the recipe and the base model."""
    from index.encoder import model_dir

    recipe = {"epochs": EPOCHS, "lr": LR, "head_lr": HEAD_LR, "batch": BATCH, "warmup": WARMUP,
              **({"loss": LOSS, "groups": GROUPS} if LOSS != "pointwise" else {}),
              **({"precision": PRECISION} if PRECISION != "fp32" else {}),
              **({"frozen": list(FROZEN)} if FROZEN != EMBEDDINGS else {}),  # keys of the usual recipe unchanged
              "max_tokens": C.READER.max_tokens, "seed": seed, "model": str(model_dir().name)}
    h = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode())
    for q, t, y in pairs:
        h.update(json.dumps([q, t, y]).encode())
    return h.hexdigest()[:24]


def fit_reader(pairs: list[tuple[str, str, float]], seed: int, progress: bool = True, desc: str = "reader",
               cache: Path | None = None):
    """The fine-tuned torch model (eval mode). With ``cache`` (a directory), a reader fitted
    before on the same pairs, seed and recipe is loaded from there instead of fitted again, and a
    new one is saved there (its trained weights, as safetensors): a ``rag train`` stopped after
    its first readers resumes after them. A fit under way is checkpointed there too
    (``train_loop``), so one stopped midway goes on from its last checkpoint."""
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    net = minilm_net(seed, 1, pooled=True)
    saved = Path(cache) / f"reader-{fit_key(pairs, seed)}.safetensors" if cache else None
    if saved is not None and saved.exists():
        from safetensors.torch import load_file

        missing, unexpected = net.load_state_dict(load_file(str(saved)), strict=False)
        if unexpected or any(not frozen(k) for k in missing):
            raise ValueError(f"{saved} is not a reader of this recipe; delete it to fit again")
        return net.eval()
    tok = reader_tokenizer()
    bce = torch.nn.functional.binary_cross_entropy_with_logits

    def scored(batch):
        feeds = {k: torch.from_numpy(v) for k, v in encode_pairs(tok, [(q, t) for q, t, _ in batch]).items()}
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=PRECISION == "bf16"):
            z = net(**feeds)
        return z.float(), torch.tensor([y for _, _, y in batch])

    def pointwise(batch):
        return bce(*scored(batch))

    def listwise(groups):
        """Per question: the pairs' cross-entropy plus, when it has gold pairs, the softmax
        cross-entropy of its pairs against the gold ones (shared evenly); the mean over questions."""
        z, y = scored([p for g in groups for p in g])
        total, i = 0.0, 0
        for g in groups:
            s, t = z[i : i + len(g)], y[i : i + len(g)]
            i += len(g)
            total = total + bce(s, t)
            if t.sum() > 0:
                total = total - (torch.log_softmax(s, 0) * t / t.sum()).sum()
        return total / len(groups)

    partial = saved.with_suffix(".partial") if saved is not None else None  # a fit under way, resumed
    if LOSS == "listwise":
        net = train_loop(net, question_groups(pairs), listwise, seed, progress, desc, epochs=EPOCHS, batch=GROUPS,
                         checkpoint=partial, every=CHECKPOINT_EVERY)
    else:
        net = train_loop(net, pairs, pointwise, seed, progress, desc, epochs=EPOCHS, checkpoint=partial,
                         every=CHECKPOINT_EVERY)
    if saved is not None:
        save_tensors({k: v for k, v in net.state_dict().items() if not frozen(k)}, saved)
        partial.unlink(missing_ok=True)  # only now: a stop before this resumes from the checkpoint
    return net


def torch_scores(net, question: str, texts: list[str], tok=None) -> np.ndarray:
    """The torch model's log-odds for (question, text) pairs (out-of-fold scoring in training);
    ``tok``: a ``reader_tokenizer()`` to reuse across calls."""
    import torch

    if not texts:
        return np.zeros(0, np.float32)
    pairs = [(question, t) for t in texts]
    feeds = {k: torch.from_numpy(v) for k, v in encode_pairs(tok or reader_tokenizer(), pairs).items()}
    with torch.no_grad():
        return net(**feeds).numpy().astype(np.float32)


SAMPLE_PAIRS = [("a question", "a sentence"), ("a question", "another one")]  # to trace a graph


def export_graph(net, path: Path, feeds: dict[str, np.ndarray], logits_axes: dict[int, str]) -> None:
    """Write ``net`` as an int8 (dynamic quantisation) ONNX graph at ``path``, atomically.
    ``feeds``: a sample batch of its inputs; ``logits_axes``: the dynamic axes of its output."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    full = path.with_suffix(".fp32.tmp")
    tmp = path.with_suffix(".tmp")
    sample = {k: torch.from_numpy(v) for k, v in feeds.items()}
    torch.onnx.export(
        net, (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"]), str(full),
        input_names=list(sample), output_names=["logits"], opset_version=17, dynamo=False,
        dynamic_axes={k: {0: "pairs", 1: "tokens"} for k in sample} | {"logits": logits_axes},
    )
    # one scale per output channel of each weight matrix, not one per matrix: the reader of all
    # of train puts the right dev sentence first (stacked) 0.763 of the time so, as the float
    # graph does, and 0.741 with one scale a matrix (docs/answerer.md, "Int8 per channel")
    quantize_dynamic(str(full), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
    full.unlink()
    tmp.chmod(0o644)
    tmp.replace(path)


def export_reader(net, path: Path) -> None:
    """The reader as an int8 ONNX graph at ``path`` (one log-odds per pair)."""
    export_graph(net, path, encode_pairs(reader_tokenizer(), SAMPLE_PAIRS), {0: "pairs"})


def head_of(z: np.ndarray) -> np.ndarray:
    """Indices of the candidates the reader reads: the best ``settings.READER.candidates`` by ``z``."""
    return np.argsort(-np.asarray(z), kind="stable")[: C.READER.candidates]


def row_texts(index, rows, titled: bool = C.READER.titled) -> list[list[str]]:
    """What the reader reads of every candidate sentence of every question (``reader_text``)."""
    from rag.retrieval.reader import reader_text

    return [[reader_text(index.articles[index.by_source[src]], i, titled) for src, i in r.keys] for r in rows]


def read_heads(score, rows, logits, texts) -> list[np.ndarray]:
    """``score(question, texts)`` of each question's head candidates, as an array over all of its
    candidates (NaN where unread)."""
    out = []
    for r, z, tx in zip(rows, logits, texts):
        full = np.full(len(z), np.nan, np.float32)
        head = head_of(z)
        if len(head):
            full[head] = score(r.reader_question, [tx[j] for j in head])
        out.append(full)
    return out


def read_out_of_fold(rows, logits, texts, splits: list[tuple[list[int], list[int]]], seed: int, progress: bool = True,
                     cache: Path | None = None) -> list[np.ndarray]:
    """The reader log-odds of every train question's head candidates, each by a reader that did
    not see its articles: ``splits`` holds, per reader, the indices of the questions it is fitted
    on and of those it reads (``eval.train.fold_split`` of two halves); ``cache``: as ``fit_reader``."""
    out: list[np.ndarray] = [np.zeros(0, np.float32)] * len(rows)
    tok = reader_tokenizer()
    for half, (fit, held) in enumerate(splits):
        net = fit_reader(training_pairs([rows[i] for i in fit], [logits[i] for i in fit], [texts[i] for i in fit]),
                         seed + half, progress, desc=f"reader, {half + 1} of {len(splits)} (out of fold)", cache=cache)
        reads = read_heads(lambda q, t, net=net: torch_scores(net, q, t, tok), [rows[i] for i in held],
                           [logits[i] for i in held], [texts[i] for i in held])
        for i, v in zip(held, reads):
            out[i] = v
    return out


def stacked(rows, logits, reads, stack) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per question: the stacked log-odds of its candidates and their reader column (as
    ``rag.retrieval.reader.rerank`` computes them)."""
    from rag.retrieval.reader import restack

    Z, R = [], []
    for z, v in zip(logits, reads):
        head = np.flatnonzero(~np.isnan(v))  # every question with a candidate had some read
        zz, rr = restack(z, head, v[head], stack)
        Z.append(zz)
        R.append(rr)
    return Z, R


def stack_rows(rows, logits, reads) -> tuple[np.ndarray, np.ndarray]:
    """(evidence log-odds, reader log-odds) and the gold label of every read candidate."""
    X, y = [], []
    for r, z, v in zip(rows, logits, reads):
        for j in np.flatnonzero(~np.isnan(v)):
            X.append([z[j], v[j]])
            y.append(bool(r.y[j]))
    return np.array(X, np.float32).reshape(-1, 2), np.array(y, bool)
