"""Fits `services.answers.support.SupportModel` on labelled sentence/abstract pairs (SciFact).

    GROUNDWIRE_LOCAL_THREADS=2 .venv/bin/python -m bench.support_calibration \\
        [--data ../shared/data/scifact-dev] [--pairs 3000] [--seed 7]

Half the pairs are supported: a sentence of an abstract checked against that abstract, either
copied or lightly paraphrased (synonyms from a small table, a clause dropped, a lead-in moved,
a "the study found that" prefix). Half are not: (a) the sentence against the nearest other
abstract by title under the local embedder; (b) a number changed; (c) a negation inserted (+)
or removed (-); (d) a content word or name swapped for one of the neighbour's; (b)-(d) are
checked against their own abstract. Abstracts are split 70/30 into train and test, so one
abstract's sentences never sit in both. A logistic model (Newton, a little L2) is fitted on
train, and the threshold chosen there: the largest recall of "unsupported" at the precision
of --target-precision (0.9 by default; the shipped model was chosen at 0.92).

Prints the pairs per kind, the weights and bias as a dict for `SupportModel.default()`, the
threshold, test metrics with and without `similarity` (and for the shipped
weights), the mean features per kind, and the time of one `features()` call with and without
the embedder. Claims (queries.jsonl) are not used: qrels do not say which ones are refuted.

`--checker judge` and `--checker local:<name>` (repeatable) score the same test pairs with the
other checkers of services/answers/checkers.py, side by side at their own thresholds: the
chat model of the GROUNDWIRE_CHAT_* settings as a judge (10 sentences a call, as an answer's),
or an operator's support model from the models folder; each row says its time per sentence.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from services.answers.chat import ChatModel
from services.answers.checkers import Judge, Lexical, SupportChecker, SupportModelFile
from services.answers.support import _SENTENCE_END, FEATURES, STOP_WORDS, SupportModel, features
from services.config import Settings
from services.embedding.registry import EmbedderRegistry
from services.local_models.folder import local_model_name

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact-dev"
KINDS = ("copy", "para", "a_nbr", "b_num", "c_neg+", "c_neg-", "d_swap")
SHARES = {"copy": 1 / 6, "para": 1 / 3, "a_nbr": 1 / 8, "b_num": 1 / 8, "c_neg+": 1 / 16,
          "c_neg-": 1 / 16, "d_swap": 1 / 8}  # fmt: skip
SYNONYMS = {
    "increased": "raised", "decreased": "reduced", "reduced": "lowered", "patients": "subjects",
    "showed": "demonstrated", "demonstrated": "showed", "significantly": "markedly",
    "results": "findings", "associated": "linked", "suggest": "indicate", "suggests": "indicates",
    "important": "key", "observed": "seen", "revealed": "showed", "induced": "triggered",
    "required": "needed", "identified": "found", "higher": "greater", "lower": "smaller",
    "risk": "likelihood", "levels": "concentrations", "role": "function", "examined": "studied",
    "investigated": "studied", "novel": "new", "treatment": "therapy", "effect": "impact",
    "effects": "impacts", "mechanism": "process", "determine": "establish",
}  # fmt: skip
NEGATE = [(" is ", " is not "), (" was ", " was not "), (" are ", " are not "),
          (" were ", " were not "), (" can ", " cannot "), (" has ", " has not "),
          (" have ", " have not "), (" increases ", " does not increase "),
          (" increased ", " did not increase "), (" reduced ", " did not reduce "),
          (" showed ", " did not show "), (" induces ", " does not induce ")]  # fmt: skip
UNNEGATE = [(" not ", " "), (" no ", " "), (" cannot ", " can "), (" without ", " with "),
            (" never ", " ")]  # fmt: skip
LABEL = re.compile(r"^(?:[A-Z]{3,}(?:\s+[A-Z]{2,})*:?\s+)+")  # BACKGROUND, METHODS AND ...
NUMBER = re.compile(r"(?<![\w.-])\d+(?:\.\d+)?(?!\w|\.\d)")
WORD = re.compile(r"[A-Za-z][a-z-]{4,}")
CLIPPED = re.compile(r"(\b[A-Z]\.|\bal\.|\bvs\.|\be\.g\.|\bi\.e\.)$")  # split at an abbreviation
LEAD_IN = re.compile(r"^(In|Among|For|After|During|Using|Compared with) ([^,]{3,60}), (.+)\.$")


@dataclass(frozen=True)
class Pair:
    kind: str
    sentence: str
    passage: str
    doc: str  # the abstract the sentence comes from: the unit of the split
    label: int  # 1 supported, 0 unsupported


def load(data: Path) -> dict[str, dict[str, str]]:
    lines = (data / "corpus.jsonl").read_text().splitlines()
    return {d["id"]: d for d in map(json.loads, lines)}


def sentences(text: str) -> list[str]:
    """The abstract's sentences fit to restate: 8-50 words, capitalised, ending with '.'."""
    found = (LABEL.sub("", s.strip()) for s in _SENTENCE_END.split(text))
    return [
        s
        for s in found
        if 8 <= len(s.split()) <= 50 and s[:1].isupper() and s[-1] == "." and not CLIPPED.search(s)
    ]


def replace_once(text: str, pairs: list[tuple[str, str]], rng: random.Random) -> str | None:
    options = [(a, b) for a, b in pairs if a in text]
    if not options:
        return None
    old, new = rng.choice(options)
    return text.replace(old, new, 1)


def paraphrase(s: str, rng: random.Random) -> str:
    words = s.split(" ")
    verbs = {"results", "effects"}  # "results in" is a verb: no synonym there
    spots = [
        i
        for i, w in enumerate(words)
        if w.lower() in SYNONYMS and not (w.lower() in verbs and words[i + 1 :][:1] == ["in"])
    ]
    for i in rng.sample(spots, min(len(spots), rng.randint(1, 3))):
        new = SYNONYMS[words[i].lower()]
        words[i] = new.capitalize() if words[i][0].isupper() else new
    s = " ".join(words)
    op = rng.choice(("paren", "clause", "lead", "prefix"))
    lead = LEAD_IN.match(s)
    if op == "paren" and "(" in s:
        s = re.sub(r"\s*\([^()]*\)", "", s, count=1)
    elif op == "clause" and ", " in s:
        head, tail = s.rsplit(", ", 1)
        if len(head.split()) >= 6 and len(tail.split()) <= len(head.split()):
            s = head + "."
    elif op == "lead" and lead:
        s = f"{lead[3][0].upper()}{lead[3][1:]} {lead[1].lower()} {lead[2]}."
    elif op == "prefix":
        s = "The study found that " + s[0].lower() + s[1:]
    return s


def change_number(s: str, rng: random.Random) -> str | None:
    spots = list(NUMBER.finditer(s))
    if not spots:
        return None
    m = rng.choice(spots)
    old = m.group()
    if "." in old:
        places = len(old.split(".")[1])
        step = rng.choice((1, 2, 3)) * 10**-places * rng.choice((-1, 1))
        new = f"{max(0.0, float(old) + step):.{places}f}"
    else:
        new = str(max(0, int(old) + rng.choice((1, 2, 5, 10)) * rng.choice((-1, 1))))
    return None if new == old else s[: m.start()] + new + s[m.end() :]


def swap_word(s: str, own: str, other: str, rng: random.Random) -> str | None:
    """Swaps a content word (a name when both have one) of `s` for one `other` has, `own` not."""
    known = {w.lower() for w in WORD.findall(own)}
    mine = [w for w in WORD.findall(s)[1:] if w.lower() not in STOP_WORDS]
    theirs = sorted({w for w in WORD.findall(other) if w.lower() not in known | STOP_WORDS})
    names = [w for w in mine if w[0].isupper()]
    their_names = [w for w in theirs if w[0].isupper()]
    if names and their_names:
        mine, theirs = names, their_names
    if not mine or not theirs:
        return None
    old = rng.choice(mine)
    return re.sub(rf"\b{re.escape(old)}\b", rng.choice(theirs), s, count=1)


def make(kind: str, doc: str, docs, nbr: dict[str, str], rng: random.Random) -> Pair | None:
    text = docs[doc]["text"]
    options = sentences(text)
    edits = {"c_neg+": NEGATE, "c_neg-": UNNEGATE}.get(kind, [])
    if kind == "b_num":
        options = [s for s in options if NUMBER.search(s)]
    elif edits:
        options = [s for s in options if any(a in s for a, _ in edits)]
    if not options:
        return None
    s = rng.choice(options)
    other = docs[nbr[doc]]["text"]
    made: str | None
    made, passage, label = s, text, 0
    if kind in ("copy", "para"):
        made, label = (s if kind == "copy" else paraphrase(s, rng)), 1
        made = None if kind == "para" and made == s else made
    elif kind == "a_nbr":
        passage = other
    elif kind == "b_num":
        made = change_number(s, rng)
    elif edits:
        made = replace_once(s, edits, rng)
    elif kind == "d_swap":
        made = swap_word(s, text, other, rng)
    return None if made is None else Pair(kind, made, passage, doc, label)


def build(docs, ids: list[str], count: int, nbr, rng: random.Random) -> list[Pair]:
    pool = rng.sample(ids, min(len(ids), max(50, count // 3)))
    pairs: list[Pair] = []
    for kind, share in SHARES.items():
        want, tries = round(count * share), 0
        while want > 0 and tries < 50 * count:
            tries += 1
            pair = make(kind, rng.choice(pool), docs, nbr, rng)
            if pair is not None:
                pairs.append(pair)
                want -= 1
    return pairs


def neighbours(docs, ids: list[str], embed: Callable[[list[str]], np.ndarray]) -> dict[str, str]:
    """Each abstract's nearest other abstract by title (shared vocabulary: a hard negative)."""
    keys = list(docs)
    vectors = embed([docs[k]["title"] for k in keys])
    where = {k: i for i, k in enumerate(keys)}
    found = {}
    for doc in ids:
        sims = vectors @ vectors[where[doc]]
        for j in np.argsort(-sims)[:5]:
            if keys[j] != doc and docs[keys[j]]["text"] != docs[doc]["text"]:
                found[doc] = keys[int(j)]
                break
    return found


class CachedEmbed:
    """The embedder with a memory, so an abstract's sentences are embedded once."""

    def __init__(self, embed: Callable[[list[str]], np.ndarray]) -> None:
        self.embed, self.cache = embed, dict[str, np.ndarray]()

    def __call__(self, texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if missing:
            self.cache.update(zip(missing, self.embed(missing), strict=True))
        return np.stack([self.cache[t] for t in texts])


def fit(x: np.ndarray, y: np.ndarray, l2: float = 1e-3) -> np.ndarray:
    """Logistic regression by Newton's method: weights then bias (not penalised)."""
    a = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(a.shape[1])
    penalty = np.diag([l2] * x.shape[1] + [0.0])
    for _ in range(100):
        p = 1 / (1 + np.exp(-a @ w))
        grad = a.T @ (p - y) / len(y) + penalty @ w
        hess = (a * (p * (1 - p))[:, None]).T @ a / len(y) + penalty
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-9:
            break
    return w


def threshold(scores: np.ndarray, y: np.ndarray, target: float = 0.9) -> tuple[float, str]:
    """The score under which a sentence counts as unsupported: best recall at the precision."""
    order = np.argsort(scores)
    s, neg = scores[order], (y[order] == 0).astype(float)
    tp = np.cumsum(neg)
    precision, recall = tp / np.arange(1, len(s) + 1), tp / neg.sum()
    cut = np.append(s[1:] > s[:-1], True)  # only between distinct scores
    ok = cut & (precision >= target)
    rule = f"max recall at precision >= {target}"
    if not ok.any():
        ok, rule = cut, "precision target unreachable: max F1"
        recall = 2 * precision * recall / (precision + recall)
    k = int(np.argmax(np.where(ok, recall, -1)))
    return (float(s[k] + s[k + 1]) / 2 if k + 1 < len(s) else float(s[k]) + 1e-9), rule


def score(model: SupportModel, x: np.ndarray) -> np.ndarray:
    return np.array([model.score(dict(zip(FEATURES, map(float, r), strict=True))) for r in x])


def metrics(scores: np.ndarray, y: np.ndarray, kinds: list[str], t: float) -> dict[str, float]:
    flag = scores < t  # predicted unsupported
    tp = float(np.sum(flag & (y == 0)))
    out = {
        "P(unsup)": tp / max(1, flag.sum()),
        "R(unsup)": tp / max(1, (y == 0).sum()),
        "acc": float(np.mean(flag == (y == 0))),
        "R(sup)": float(np.mean(~flag[y == 1])),
    }
    for kind in KINDS:  # per kind: the share the checker gets right
        mask = np.array([k == kind for k in kinds])
        out[kind] = float(np.mean(flag[mask] == (y[mask] == 0))) if mask.any() else float("nan")
    return out


def table(rows: dict[str, dict[str, float]]) -> None:
    cols = list(next(iter(rows.values())))
    print(f"{'':<22}" + "".join(f"{c:>9}" for c in cols))
    for name, row in rows.items():
        print(f"{name:<22}" + "".join(f"{row[c]:>9.3f}" for c in cols))


def matrix(pairs: list[Pair], embed: CachedEmbed) -> tuple[np.ndarray, np.ndarray]:
    rows = [features(p.sentence, [p.passage], embed=embed) for p in pairs]
    labels = np.array([p.label for p in pairs])
    return np.array([[r[f] for f in FEATURES] for r in rows]), labels


def timing(pairs: list[Pair], embed: Callable[[list[str]], np.ndarray]) -> tuple[float, float]:
    """Mean seconds of one `features()` call: without embed (all pairs), with (uncached, 40)."""
    started = time.perf_counter()
    for p in pairs:
        features(p.sentence, [p.passage])
    plain = (time.perf_counter() - started) / len(pairs)
    sample = pairs[:: max(1, len(pairs) // 40)]
    started = time.perf_counter()
    for p in sample:
        features(p.sentence, [p.passage], embed=embed)
    return plain, (time.perf_counter() - started) / len(sample)


def calibrate(train, test, embed: CachedEmbed, target: float = 0.9) -> dict[str, dict[str, float]]:
    """Fits with and without `similarity`, prints each model; returns the test metrics."""
    (x_train, y_train), (x_test, y_test) = matrix(train, embed), matrix(test, embed)
    kinds, rows = [p.kind for p in test], {}
    lexical = [f for f in FEATURES if f != "similarity"]
    for name, cols in (("with similarity", list(FEATURES)), ("without similarity", lexical)):
        w = fit(x_train[:, [FEATURES.index(c) for c in cols]], y_train)
        weights = {f: round(float(w[cols.index(f)]), 3) if f in cols else 0.0 for f in FEATURES}
        model = SupportModel(weights, round(float(w[-1]), 3), 0.0)
        t, rule = threshold(score(model, x_train), y_train, target)
        fitted = metrics(score(model, x_train), y_train, [], t)
        print(f"\n{name}: weights={weights!r}, bias={model.bias}, threshold={t:.3f}")
        print(f"  ({rule}; train P(unsup)={fitted['P(unsup)']:.3f} R={fitted['R(unsup)']:.3f})")
        rows[name] = metrics(score(model, x_test), y_test, kinds, t)
    default = SupportModel.default()
    rows["shipped default"] = metrics(score(default, x_test), y_test, kinds, default.threshold)
    print("\nmean features per kind (test)")
    print(f"{'':<8}" + "".join(f"{f:>11}" for f in FEATURES))
    for kind in KINDS:
        rows_of_kind = x_test[[k == kind for k in kinds]]
        mean = rows_of_kind.mean(axis=0) if len(rows_of_kind) else np.full(len(FEATURES), np.nan)
        print(f"{kind:<8}" + "".join(f"{v:>11.3f}" for v in mean))
    return rows


JUDGED_TOGETHER = 10


def other_checker(spec: str, settings: Settings) -> SupportChecker:
    """The checker `--checker` names."""
    if spec == "judge":
        return Judge(ChatModel(settings), settings.chat_model, Lexical(SupportModel.default()))
    if (name := local_model_name(spec)) is not None:
        return SupportModelFile(settings.models_folder(), name)
    raise SystemExit(f"--checker {spec!r}: judge or local:<name>")


def checked(checker: SupportChecker, test: list[Pair]) -> tuple[np.ndarray, float]:
    """The checker's scores of the test pairs, and its mean seconds a sentence."""
    started, scores = time.perf_counter(), []
    for start in range(0, len(test), JUDGED_TOGETHER):
        group = test[start : start + JUDGED_TOGETHER]
        scores.extend(checker.scores([(p.sentence, [p.passage]) for p in group]))
    return np.array(scores), (time.perf_counter() - started) / max(1, len(test))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--pairs", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--checker", action="append", default=[], help="judge or local:<name>")
    parser.add_argument(
        "--target-precision",
        type=float,
        default=0.9,
        help="the precision (unsupported) the threshold is chosen for on the training split",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    rng, docs = random.Random(args.seed), load(args.data)
    ids = sorted(docs)
    rng.shuffle(ids)
    cut = int(0.7 * len(ids))
    embedder = EmbedderRegistry(Settings()).get("local")
    nbr = neighbours(docs, ids, embedder.embed)
    train = build(docs, ids[:cut], int(0.7 * args.pairs), nbr, rng)
    test = build(docs, ids[cut:], args.pairs - len(train), nbr, rng)
    print(f"pairs: {len(train)} train, {len(test)} test (abstracts split 70/30)")
    print(f"  {'kind':<7} {'train':>5} {'test':>5}")
    for kind in KINDS:
        counts = [sum(p.kind == kind for p in split) for split in (train, test)]
        print(f"  {kind:<7} {counts[0]:>5} {counts[1]:>5}")
    plain, with_embed = timing(train + test, embedder.embed)
    rows = calibrate(train, test, CachedEmbed(embedder.embed), args.target_precision)
    labels, kinds = np.array([p.label for p in test]), [p.kind for p in test]
    for spec in args.checker:
        checker = other_checker(spec, Settings())
        scores, seconds = checked(checker, test)
        name = f"{checker.name} ({seconds * 1e3:.0f} ms)"
        rows[name] = metrics(scores, labels, kinds, checker.threshold)
    print("\ntest split (per kind: share judged correctly)")
    table(rows)
    print(f"\nfeatures() mean: {plain * 1e3:.2f} ms without embed, {with_embed * 1e3:.1f} ms with")
    print(f"run: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
