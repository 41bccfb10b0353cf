"""Human judgments: blind pairs to rate, stored in the experiment's MLflow store, and what they say."""

from __future__ import annotations

import pandas as pd

from ..tracking.judgments import CHOICES, Judgment, load_judgments
from ..tracking.reader import load_runs
from .active import (
    ACTIVE_METHOD,
    Posterior,
    Settlement,
    choose_pair,
    next_pair,
    posterior,
    settlement,
    win_matrix,
)
from .analysis import (
    BT_METHOD,
    PRELIMINARY_BELOW,
    bradley_terry,
    metric_agreement_frame,
    rank_frame,
    rater_agreement_frame,
)
from .pairs import DESIGN_COLUMNS, Pair, build_pairs

__all__ = ["ACTIVE_METHOD", "BT_METHOD", "CHOICES", "DESIGN_COLUMNS", "PRELIMINARY_BELOW", "QUESTIONS", "Judgment",
           "Pair", "Posterior", "Settlement", "bradley_terry", "build_pairs", "choose_pair", "load_ratings",
           "metric_agreement", "next_pair", "posterior", "question_text", "rank", "ranking_settled",
           "rater_agreement", "settlement", "win_matrix"]

# The three axes LOVEU-TGVE's human study asked about (text alignment, structure, quality).
QUESTIONS = {
    "text": "Which output follows the prompt better?",
    "structure": "Which output keeps the source's structure and motion better?",
    "quality": "Which output looks better as a video (sharp, clean, steady)?",
}


def question_text(question: str) -> str:
    """A preset's name (text, structure, quality) or the question itself."""
    from ..errors import InputError

    text = QUESTIONS.get(question, question)
    if not isinstance(text, str) or not text.strip() or len(text) > 500:
        raise InputError("question", question, f"a preset ({', '.join(QUESTIONS)}) or a question of 1 to 500 characters")
    return text.strip()


def load_ratings(experiment: str, *, tracking_uri: str | None = None) -> pd.DataFrame:
    """Every judgment made on the experiment by every rater: one row each (rater, question, the two
    runs as shown left and right, their `by` values, the choice, when, seconds taken, winner)."""
    return load_judgments(experiment, tracking_uri=tracking_uri)


def _ratings(experiment: str, ratings: pd.DataFrame | None, tracking_uri: str | None) -> pd.DataFrame:
    return ratings if ratings is not None else load_judgments(experiment, tracking_uri=tracking_uri)


def _question(question: str | None) -> str | None:
    return None if question is None else question_text(question)


def rank(experiment: str, by: str = "model", question: str | None = None, *, tracking_uri: str | None = None,
         ratings: pd.DataFrame | None = None, bootstrap: int = 1000, seed: int = 0,
         preliminary_below: int = PRELIMINARY_BELOW) -> pd.DataFrame:
    """Bradley-Terry strength of each `by` group per question, with a bootstrap 95% interval and n;
    rank = 1 + the groups clearly better (intervals apart), best lower bound first, `preliminary` for
    groups with fewer than `preliminary_below` judgments; the method is in `.attrs["method"]`.
    question: a preset name, the text, or None for each question."""
    return rank_frame(_ratings(experiment, ratings, tracking_uri), by, _question(question),
                      bootstrap=bootstrap, seed=seed, preliminary_below=preliminary_below)


def ranking_settled(experiment: str, by: str = "model", question: str = "text", *, tracking_uri: str | None = None,
                    ratings: pd.DataFrame | None = None) -> Settlement:
    """Whether the judgments so far settle the ranking of the `by` groups on `question` (every two
    neighbours in the ranking separated at 95%, Bonferroni over the neighbours, or the current order
    at least 99% likely under the posterior): `.enough`, `.order`, `.unsettled`, `.order_probability`;
    str() says it in one line."""
    df = _ratings(experiment, ratings, tracking_uri)
    df = df[(df["by"] == by) & (df["question"] == question_text(question))]
    groups = sorted(set(df["left_value"].dropna()) | set(df["right_value"].dropna()))
    return settlement(win_matrix(df, groups), groups)


def rater_agreement(experiment: str, question: str | None = None, *, tracking_uri: str | None = None,
                    ratings: pd.DataFrame | None = None) -> pd.DataFrame:
    """Krippendorff's alpha per question over the pairs two or more raters judged."""
    return rater_agreement_frame(_ratings(experiment, ratings, tracking_uri), _question(question))


def metric_agreement(experiment: str, question: str | None = None, *, tracking_uri: str | None = None,
                     ratings: pd.DataFrame | None = None, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per metric and question: the share of decided judgments the metric orders as the rater did, its
    Wilson 95% interval and n. The first rows are the metrics that agree with people most."""
    runs = runs if runs is not None else load_runs(experiment, tracking_uri=tracking_uri)
    return metric_agreement_frame(_ratings(experiment, ratings, tracking_uri), runs, _question(question))
