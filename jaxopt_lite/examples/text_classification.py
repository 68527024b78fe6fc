r"""Topic classification of short texts with a bag-of-embeddings model.

The data set is generated here (no download): each sentence belongs to one of
four topics and mixes words of that topic with filler words every topic uses,
a few words borrowed from other topics, and some words shared by two topics.
Sentences are tokenized with a vocabulary built from the training set and
padded to a fixed length; a mask marks the real tokens. The model averages the
word embeddings of the real tokens and applies a linear layer:

$$
h = \frac{\sum_j m_j\, E_{w_j}}{\sum_j m_j}, \qquad
p(\text{topic} \mid \text{sentence}) = \mathrm{softmax}(W h + b).
$$

It is trained with `jaxopt_lite.adamw` by `jaxopt_lite.fit`; integer token ids
and float masks travel in the same data dict as the labels and are sampled
together on the device. The report ends with the words whose embeddings push
hardest towards each topic.

Run it::

    python -m jaxopt_lite.examples.text_classification --out plots/
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

import jaxopt_lite as jol
from jaxopt_lite.examples import _common

TOPICS = {
    "sports": "goal match team score coach league player referee stadium season "
    "tournament striker",
    "science": "atom cell energy experiment theory quantum molecule gene laboratory "
    "physics orbit hypothesis",
    "cooking": "recipe oven flour sugar bake spice sauce pan garlic dough butter chef",
    "politics": "vote election senate law policy party minister debate parliament "
    "tax court reform",
}
# Words two topics share (ambiguous on their own).
SHARED = {
    "win": ("sports", "politics"),
    "campaign": ("sports", "politics"),
    "data": ("science", "politics"),
    "heat": ("science", "cooking"),
    "mix": ("cooking", "science"),
    "fans": ("sports", "cooking"),
}
FILLER = (
    "the a of and to in is it that was for on with as at by this from very some "
    "about then just really new big good said people today"
).split()
MAX_LEN = 20
PAD, UNK = "<pad>", "<unk>"


def generate(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """``n`` sentences (strings) and their topic labels (int32)."""
    rng = np.random.default_rng(seed)
    names = list(TOPICS)
    words = {
        t: TOPICS[t].split() + [w for w, ts in SHARED.items() if t in ts] for t in names
    }
    sentences, labels = [], rng.integers(0, len(names), size=n).astype(np.int32)
    for label in labels:
        length = int(rng.integers(8, MAX_LEN + 1))
        kind = rng.choice(
            3, size=length, p=[0.35, 0.6, 0.05]
        )  # topic, filler, other topic
        tokens = []
        for k in kind:
            if k == 0:
                tokens.append(rng.choice(words[names[label]]))
            elif k == 1:
                tokens.append(rng.choice(FILLER))
            else:
                other = names[(label + int(rng.integers(1, len(names)))) % len(names)]
                tokens.append(rng.choice(words[other]))
        sentences.append(" ".join(tokens))
    return sentences, labels


def build_vocab(sentences: Sequence[str]) -> dict[str, int]:
    """Token -> id, with 0 for padding and 1 for unknown words."""
    vocab = {PAD: 0, UNK: 1}
    for sentence in sentences:
        for word in sentence.split():
            vocab.setdefault(word, len(vocab))
    return vocab


def encode(
    sentences: Sequence[str], vocab: dict[str, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Padded token ids (int32, ``(n, MAX_LEN)``) and the float mask of real tokens."""
    ids = np.zeros((len(sentences), MAX_LEN), np.int32)
    for i, sentence in enumerate(sentences):
        tokens = [vocab.get(w, vocab[UNK]) for w in sentence.split()][:MAX_LEN]
        ids[i, : len(tokens)] = tokens
    return ids, (ids != 0).astype(np.float32)


def init_params(key: jax.Array, vocab_size: int, dim: int, classes: int) -> dict:
    k_emb, k_out = jax.random.split(key)
    return {
        "embedding": 0.1 * jax.random.normal(k_emb, (vocab_size, dim)),
        "w": jax.random.normal(k_out, (dim, classes)) / jnp.sqrt(dim),
        "b": jnp.zeros((1, classes)),
    }


def logits_fn(params, ids, mask):
    """Masked mean of the token embeddings, then a linear layer."""
    vectors = params["embedding"][ids] * mask[..., None]
    pooled = jnp.sum(vectors, axis=1) / jnp.maximum(
        jnp.sum(mask, axis=1, keepdims=True), 1.0
    )
    return pooled @ params["w"] + params["b"]


def loss_fn(params, batch):
    log_probs = jax.nn.log_softmax(logits_fn(params, batch["ids"], batch["mask"]))
    return -jnp.mean(jnp.take_along_axis(log_probs, batch["y"][:, None], axis=1))


def eval_fn(params, data):
    logits = logits_fn(params, data["ids"], data["mask"])
    return {"accuracy": jnp.mean(jnp.argmax(logits, axis=-1) == data["y"])}


def run(fast: bool = False, out: str | None = None) -> dict:
    """Generate the corpus, train the bag-of-embeddings classifier, test it.

    Args:
        fast: 1,000 training sentences instead of 4,000 (10 epochs).
        out: a folder for the PNG plot (``text_classification.png``), or ``None``.

    Returns:
        A dict with ``test_accuracy``, ``train_accuracy``, ``final_loss``,
        ``steps``, ``vocab_size``, ``examples`` (a few test sentences with true
        and predicted topics), ``top_words`` (topic -> most indicative words),
        ``methods`` (rows for the demo table), ``time_s`` and ``plots``.
    """
    n_train, epochs = (1000, 10) if fast else (4000, 10)
    batch_size = 50
    steps_per_epoch = n_train // batch_size
    train_text, train_y = generate(n_train, seed=0)
    test_text, test_y = generate(1000, seed=1)
    vocab = build_vocab(train_text)
    train_ids, train_mask = encode(train_text, vocab)
    test_ids, test_mask = encode(test_text, vocab)
    train = {"ids": train_ids, "mask": train_mask, "y": train_y}
    test = {"ids": test_ids, "mask": test_mask, "y": test_y}

    params = init_params(jax.random.key(0), len(vocab), 16, len(TOPICS))
    with _common.timer() as t:
        result = jol.fit(
            loss_fn,
            params,
            jol.adamw(1e-2, weight_decay=1e-4),
            train,
            epochs=epochs,
            batch_size=batch_size,
            key=jax.random.key(1),
            eval_fn=eval_fn,
            eval_data=test,
            eval_every=steps_per_epoch // 4,
            log_every=steps_per_epoch // 4,
            progress=False,
        )
        test_accuracy = float(eval_fn(result.params, test)["accuracy"])
        train_accuracy = float(eval_fn(result.params, train)["accuracy"])
    history = result.history

    names = list(TOPICS)
    logits = np.asarray(logits_fn(result.params, test_ids[:4], test_mask[:4]))
    examples = [
        (test_text[i], names[test_y[i]], names[int(np.argmax(logits[i]))])
        for i in range(4)
    ]
    words = np.array(list(vocab))
    scores = np.asarray(
        result.params["embedding"] @ result.params["w"]
    )  # (vocab, topics)
    top_words = {
        name: list(words[np.argsort(-(scores[:, k] - scores.mean(axis=1)))[:5]])
        for k, name in enumerate(names)
    }

    def draw() -> list[str]:
        fig, (ax_loss, ax_acc) = _common.new_figure(2)
        ax_loss.semilogy(history["step"] / steps_per_epoch, history["loss"])
        ax_loss.set(xlabel="epoch", ylabel="cross-entropy (training)", title="loss")
        ax_acc.plot(history["eval_step"] / steps_per_epoch, history["eval_accuracy"])
        ax_acc.set(
            xlabel="epoch",
            ylabel="test accuracy",
            title=f"bag of embeddings: {test_accuracy:.1%}",
        )
        return [_common.save_figure(fig, out, "text_classification.png")]

    plots = _common.maybe_plot(out, draw)
    return {
        "test_accuracy": test_accuracy,
        "train_accuracy": train_accuracy,
        "final_loss": float(history["loss"][-1]),
        "steps": result.step,
        "vocab_size": len(vocab),
        "examples": examples,
        "top_words": top_words,
        "methods": [
            {
                "method": "adamw(1e-2), bag of embeddings",
                "steps": result.step,
                "final_loss": float(history["loss"][-1]),
                "accuracy": test_accuracy,
                "time_s": t["s"],
            }
        ],
        "time_s": t["s"],
        "plots": plots,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Print a short report; ``--fast`` and ``--out DIR`` as for `run`."""
    args = _common.parse_args(__doc__, argv)
    r = run(fast=args.fast, out=args.out)
    print(f"bag-of-embeddings topic classifier, vocabulary of {r['vocab_size']} words")
    for text, truth, guess in r["examples"]:
        print(f"  [{truth:>8} → {guess:<8}] {text}")
    print(
        f"  train accuracy: {r['train_accuracy']:.2%},"
        f" test accuracy: {r['test_accuracy']:.2%}"
    )
    print("  most indicative words:")
    for topic, words in r["top_words"].items():
        print(f"    {topic:<9} {', '.join(words)}")
    print(f"  time: {r['time_s']:.2f} s (including compilation)")
    _common.report_plots(args.out, r["plots"])


if __name__ == "__main__":
    main()
