"""The pure parts of answering: sentences and their citations, refusals, the support score."""

from __future__ import annotations

from services.answers.checkers import _rescale, judge_messages, parse_judgement
from services.answers.sentences import Sentence, is_refusal, split_sentences
from services.answers.support import SupportModel, features

PASSAGE = ["Employees accrue 25 days of paid leave per year. Unused days carry over until March."]


def test_markers_belong_to_the_sentence_they_close() -> None:
    assert split_sentences("Leave is 25 days [1]. It carries over [1][2]. Done. [3]") == [
        Sentence("Leave is 25 days.", (1,)),
        Sentence("It carries over.", (1, 2)),
        Sentence("Done.", (3,)),
    ]
    assert split_sentences("Dr. Smith agrees, e.g. in May [2].\n- one [1]\n- two") == [
        Sentence("Dr. Smith agrees, e.g. in May.", (2,)),
        Sentence("one", (1,)),
        Sentence("two", ()),
    ]
    assert split_sentences("The rate is 3.5 percent [1].") == [
        Sentence("The rate is 3.5 percent.", (1,))
    ]


def test_markers_after_the_stop_lists_and_other_scripts() -> None:
    assert split_sentences("It closes Mondays.[2] The fee is 5 euros.[1]") == [
        Sentence("It closes Mondays.", (2,)),
        Sentence("The fee is 5 euros.", (1,)),
    ]
    assert split_sentences("Steps:\n1. Open the gate [1].\n2. Ring the bell [2].") == [
        Sentence("Steps:", ()),
        Sentence("Open the gate.", (1,)),
        Sentence("Ring the bell.", (2,)),
    ]
    assert split_sentences("École fermée [1]. Élèves absents [2].") == [
        Sentence("École fermée.", (1,)),
        Sentence("Élèves absents.", (2,)),
    ]
    assert [s.citations for s in split_sentences("港口七点开门[1]。渡轮每小时一班[2]。")] == [
        (1,),
        (2,),
    ]


def test_words_of_any_script_are_evidence() -> None:
    model = SupportModel.default()
    passage = ["Маяк работает каждую ночь до самого утра."]
    assert model.score(features("Маяк работает каждую ночь.", passage)) >= model.threshold
    assert model.score(features("Порт закрыт зимой.", passage)) < model.threshold


def test_refusals_are_recognised() -> None:
    assert is_refusal("I don't know: the passages do not say.")
    assert is_refusal("The provided context does not contain that information.")
    assert not is_refusal("Employees accrue 25 days of leave [1].")


def test_the_score_separates_support_from_its_usual_failures() -> None:
    model = SupportModel.default()

    def supported(sentence: str) -> bool:
        return model.score(features(sentence, PASSAGE)) >= model.threshold

    assert supported("Employees accrue 25 days of paid leave each year.")
    assert supported("Unused days of leave carry over until March.")
    assert not supported("Employees accrue 30 days of paid leave each year.")  # a number
    assert not supported("Employees never accrue paid leave.")  # a negation
    assert not supported("The cafeteria serves pizza on Fridays.")  # another passage's
    assert features("It costs 1,000.0 dollars", ["It costs 1000 dollars"])["numbers"] == 1.0
    assert features("It costs 10 dollars", ["It costs 1 dollar"])["numbers"] == 0.0


def test_the_judges_answer_is_read_or_refused() -> None:
    assert parse_judgement('Sure: {"scores": [1, 0.25, false]}', 3) == [1.0, 0.25, 0.0]
    for text in ['{"scores": [1]}', '{"scores": [1.5, 0]}', "fine", '{"scores": "1, 0"}', "{x}"]:
        assert parse_judgement(text, 2) is None, text
    messages = judge_messages([("Leave is 25 days.", ["Employees accrue 25 days.", "More."])])
    assert messages[0]["content"].startswith("You check whether passages support sentences")
    assert messages[1]["content"] == (
        "Sentence 1: Leave is 25 days.\nIts passages:\nEmployees accrue 25 days.\n\nMore."
    )


def test_a_fallen_back_score_keeps_its_side_of_the_threshold() -> None:
    for score in (0.0, 0.3, 0.577, 0.578, 0.8, 1.0):
        moved = _rescale(score, 0.578, 0.5)
        assert 0.0 <= moved <= 1.0 and (moved >= 0.5) == (score >= 0.578)


def test_a_negation_added_or_dropped_against_the_closest_passage_sentence() -> None:
    passage = ["Unused days carry over until March. Staff do not work on Sundays."]
    assert features("Unused days do not carry over.", passage)["negation_shift"] == 1.0
    assert features("Staff work on Sundays.", passage)["negation_shift"] == 1.0
    assert features("Staff do not work on Sundays.", passage)["negation_shift"] == 0.0
    assert features("Unused days carry over.", passage)["negation_shift"] == 0.0
    model = SupportModel.default()
    assert model.score(features("Staff work on Sundays.", passage)) < model.threshold
    assert model.score(features("Staff do not work on Sundays.", passage)) >= model.threshold
