import numpy as np
import pytest

from eval import adapter as ad


def triples(n: int = 4):
    rng = np.random.default_rng(0)
    questions = [f"Who won the race number {i}?" for i in range(n)]
    vectors = [rng.normal(size=(5, 384)).astype(np.float32) for _ in range(n)]
    gold = [np.eye(5, dtype=bool)[i % 5] for i in range(n)]
    return questions, vectors, gold


def test_a_fitted_adapter_is_reloaded_from_the_cache_not_fitted_again(tmp_path, monkeypatch):
    questions, vectors, gold = triples()
    weights = ad.fit_adapter(questions, vectors, gold, seed=0, cache=tmp_path)
    (saved,) = tmp_path.iterdir()
    assert saved.name.startswith("adapter-") and saved.suffix == ".safetensors"
    packaged = ad.TorchQuestionEncoder().weights()
    assert weights.keys() == packaged.keys()
    assert any(not np.array_equal(weights[k], packaged[k]) for k in weights)  # it was fitted

    def refit(*args, **kwargs):
        raise RuntimeError("fitted again")

    monkeypatch.setattr(ad, "_fit", refit)
    again = ad.fit_adapter(questions, vectors, gold, seed=0, cache=tmp_path)
    assert again.keys() == weights.keys()
    assert all(again[k].dtype == np.float16 and np.array_equal(again[k], weights[k]) for k in weights)
    moved = [v.copy() for v in vectors]
    moved[0][0, 0] += 1.0
    for args, seed in (((questions, vectors, gold), 1), ((questions, moved, gold), 0),
                       ((questions[:-1], vectors[:-1], gold[:-1]), 0)):  # another seed or other triples
        with pytest.raises(RuntimeError, match="fitted again"):
            ad.fit_adapter(*args, seed=seed, cache=tmp_path)
    with pytest.raises(RuntimeError, match="fitted again"):  # no cache: always fitted
        ad.fit_adapter(questions, vectors, gold, seed=0)
