"""The answer-quality gate: gold files, content recall, abstention, citations, the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.runnables import RunnableLambda

from langchain_fusion.answer_eval import (
    AnswerEvalReport,
    GoldItem,
    content_recall,
    evaluate_answers,
    format_report,
    is_abstention,
    load_banned_phrases,
    load_gold,
    score_answer,
)
from langchain_fusion.cli import main
from langchain_fusion.extractive import extractive_answer
from langchain_fusion.ingest import sample_path
from langchain_fusion.qa import build_qa_chain

DATA = Path(
    os.environ.get(
        "LANGCHAIN_FUSION_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"
    )
)

WARRANTY = (
    "The manufacturer promises that each battery module will keep at least 70 % of its "
    "original usable capacity for ten years from installation. The inverter and the gateway "
    "are covered against defects for five years."
)
SAFETY = "If you notice an unusual odour, leave the building and call the emergency services."
SOURCES = [Document(WARRANTY), Document(SAFETY)]
WARRANTY_ITEM = GoldItem(
    "How long is the warranty?",
    "Ten years for each battery module, which keeps at least 70 % of its capacity; five years "
    "for the inverter and the gateway.",
    id="w",
)


# ---------------------------------------------------------------------------- gold files


def test_load_gold_reads_json_lists_objects_and_jsonl(tmp_path: Path) -> None:
    items = [
        {"question": "Q1?", "answer": "A1.", "id": "a"},
        {"question": "Q2?", "ideal_answer": "No.", "has_answer": False},
    ]
    (tmp_path / "list.json").write_text(json.dumps(items))
    (tmp_path / "obj.json").write_text(json.dumps({"questions": items}))
    (tmp_path / "lines.jsonl").write_text("\n".join(json.dumps(i) for i in items) + "\n\n")
    expected = [GoldItem("Q1?", "A1.", True, "a"), GoldItem("Q2?", "No.", False, "2")]
    for name in ("list.json", "obj.json", "lines.jsonl"):
        assert load_gold(tmp_path / name) == expected
    # "reference_answer" wins over "answer"; the bundled PDF set's "reference" (chapters) is
    # not an answer and is not read.
    (tmp_path / "both.json").write_text(
        json.dumps([{"question": "Q?", "answer": "x", "reference_answer": "y", "reference": "z"}])
    )
    assert load_gold(tmp_path / "both.json")[0].reference == "y"


def test_load_gold_reads_the_bundled_sample_questions() -> None:
    gold = load_gold(sample_path().parent / "questions.json")
    assert len(gold) == 10 and gold[0].id == "q01"
    assert [g.id for g in gold if not g.has_answer] == ["q10"]


@pytest.mark.data
def test_load_gold_reads_the_pdf_question_set() -> None:
    path = DATA / "pdfs" / "AI_Information.qa.json"
    if not path.exists():
        pytest.skip(f"benchmark data not found at {DATA}")
    gold = load_gold(path)
    assert len(gold) == 10 and sum(not g.has_answer for g in gold) == 5
    assert gold[0].reference.startswith("Explainable AI (XAI) aims")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "no questions found"),
        ("[]", "no questions found"),
        ('{"items": []}', 'under "questions"'),
        ("[1]", "item 1 must be an object"),
        ('[{"answer": "A"}]', 'item 1 has no "question"'),
        ('[{"question": "Q?"}]', "item 1 has no reference answer"),
        ('[{"question": "Q?", "answer": "A", "has_answer": "no"}]', "true or false"),
        ('{"question": "Q?", "answer": "A"}\n{broken', "line 2 is not a JSON object"),
    ],
)
def test_bad_gold_files_name_the_problem(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "gold.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=r"gold\.json") as exc:
        load_gold(path)
    assert message in str(exc.value)


def test_missing_files() -> None:
    with pytest.raises(FileNotFoundError, match="gold file not found"):
        load_gold("/nonexistent/gold.json")
    with pytest.raises(FileNotFoundError, match="banned-phrases file not found"):
        load_banned_phrases("/nonexistent/banned.txt")


# ---------------------------------------------------------------------------- scoring rules


def test_content_recall_counts_stemmed_answer_words_not_the_questions() -> None:
    # Reference content words minus the question's, stemmed: 70 batteri capac five gateway
    # invert keep least modul ten year (11); "warranty" is the question's.
    full = "Battery modules: ten years, keeping at least 70 % capacity; inverter, gateway: five."
    assert content_recall(full, WARRANTY_ITEM.reference, WARRANTY_ITEM.question) == 1.0
    part = "The battery modules are covered for ten years. [1]"
    assert content_recall(part, WARRANTY_ITEM.reference, WARRANTY_ITEM.question) == 4 / 11
    # Repeating the question earns nothing; citation numbers are not words of the answer.
    assert content_recall("The warranty. [70]", "70 warranty", "How long is the warranty?") == 0
    # A reference made only of the question's words is scored on all of them.
    assert content_recall("Paris", "Paris", "Is it Paris?") == 1.0
    assert content_recall("anything", "the of and", "q") == 1.0  # no content words at all


@pytest.mark.parametrize(
    "text",
    [
        "The sources do not seem to answer this question. The closest source is [1].",
        "I cannot answer this question from the provided sources.",
        "I don't have enough information to answer that.",
        "The provided context does not mention earthquakes.",
        "This is not mentioned in the provided documents.",
        "No sources were found for this question.",
        "The manual does not say: it does not cover electric vehicle charging.",
    ],
)
def test_abstentions_are_recognised(text: str) -> None:
    assert is_abstention(text)


@pytest.mark.parametrize(
    "text",
    [
        "The warranty does not cover misuse. [2]",
        "`lumenctl --reset-bms` does not erase settings or history. [1]",
        "Do not open the unit and do not try to find the cause. [1]",
        "Paris is the capital of France. [1]",
    ],
)
def test_answers_quoting_negative_sentences_are_not_abstentions(text: str) -> None:
    assert not is_abstention(text)


def test_a_good_answer_passes() -> None:
    answer = (
        "Each battery module keeps at least 70 % of its usable capacity for ten years [1]; the "
        'inverter and the gateway are "covered against defects for five years" [1].'
    )
    score = score_answer(WARRANTY_ITEM, answer, SOURCES)
    assert score.passed, score.reasons
    assert score.citations == [1] and score.citations_ok
    assert not score.abstained and score.recall is not None and score.recall >= 0.9


def test_invalid_unsupported_and_missing_citations_fail() -> None:
    answer = "Each battery module keeps 70 % capacity for ten years, five for the gateway."
    missing = score_answer(WARRANTY_ITEM, answer + " [3]", SOURCES)
    assert missing.invalid_citations == [3] and not missing.passed
    assert "cites missing source(s) [3]" in missing.reasons
    # Source 2 (the safety notice) says nothing about the warranty.
    wrong = score_answer(WARRANTY_ITEM, answer + " [2]", SOURCES)
    assert wrong.unsupported_citations == [2] and not wrong.passed
    assert "cited source(s) [2] lack supporting text" in wrong.reasons
    uncited = score_answer(WARRANTY_ITEM, answer, SOURCES)
    assert uncited.reasons == ["no citation"]
    # Several sources cited together support a claim jointly.
    joint = score_answer(WARRANTY_ITEM, answer + " [1][2]", SOURCES)
    assert joint.citations == [1, 2] and joint.citations_ok


def test_unverified_quotes_and_banned_phrases_fail() -> None:
    quoted = 'The modules are "guaranteed for twenty full years of use" [1], ten years in fact.'
    score = score_answer(WARRANTY_ITEM, quoted, SOURCES)
    assert score.unverified_quotes == ["guaranteed for twenty full years of use"]
    assert not score.passed
    banned = score_answer(
        WARRANTY_ITEM,
        "As an AI language model: each battery module keeps 70 % capacity for ten years, "
        "inverter and gateway five years [1].",
        SOURCES,
        banned_phrases=["as an AI language model"],
    )
    assert banned.banned_phrases == ["as an AI language model"]
    assert banned.reasons == ["banned phrase(s): 'as an AI language model'"]


def test_false_abstention_only_when_the_sources_hold_the_answer() -> None:
    abstain = "The sources do not seem to answer this question. The closest source is [1]."
    score = score_answer(WARRANTY_ITEM, abstain, SOURCES)
    assert score.abstained and score.false_abstention and not score.passed
    assert score.citations_ok  # "the closest source is [1]" claims nothing
    # The same abstention over sources that lack the answer is no false abstention.
    other = score_answer(WARRANTY_ITEM, abstain, [Document(SAFETY)])
    assert other.abstained and not other.false_abstention and not other.passed
    assert other.reasons[0] == "abstained (the sources lack the reference's content)"


def test_unanswerable_questions_pass_only_by_abstaining() -> None:
    item = GoldItem("Can it charge my electric car?", "The manual does not say.", False)
    assert score_answer(item, "I cannot answer this from the provided sources.", SOURCES).passed
    answered = score_answer(item, "Yes, it can. [1]", SOURCES)
    assert answered.recall is None and not answered.passed
    assert answered.reasons == ["answered a question the documents cannot answer"]


def test_min_recall_is_checked() -> None:
    with pytest.raises(ValueError, match=r"min_recall must be in \[0, 1\]"):
        score_answer(WARRANTY_ITEM, "x", SOURCES, min_recall=1.5)


def test_extractive_answers_are_gated_end_to_end() -> None:
    """An offline chain over a fixed retriever: one right answer, one right abstention."""
    chain = build_qa_chain(RunnableLambda(lambda q: SOURCES), llm=False)
    gold = [
        GoldItem(
            "How long are the inverter and the gateway covered?",
            "Five years, against defects.",
            id="1",
        ),
        GoldItem("Who painted the Mona Lisa?", "Not in the manual.", False, id="2"),
    ]
    report = evaluate_answers(chain.invoke, gold)
    assert [s.passed for s in report.scores] == [True, True], [s.reasons for s in report.scores]
    summary = report.summary()
    assert summary["passed"] == 2 and summary["false_abstentions"] == 0
    text = format_report(report)
    assert text.splitlines()[0].startswith("| id | question")
    assert "passed 2/2 (100%)" in text
    # The answerer may also return (text, sources) pairs; anything else is refused.
    pairs = evaluate_answers(lambda q: ("Not enough information.", []), gold[1:])
    assert pairs.pass_rate == 1.0
    with pytest.raises(TypeError, match="QAResult"):
        evaluate_answers(lambda q: "text", gold)


def test_empty_report() -> None:
    assert AnswerEvalReport([]).pass_rate == 0.0
    assert AnswerEvalReport([]).summary()["mean_recall"] is None


def test_extractive_answers_always_pass_their_own_citation_checks() -> None:
    docs = [Document(WARRANTY), Document(SAFETY)]
    answer = extractive_answer("How long are the inverter and gateway covered?", docs)
    score = score_answer(WARRANTY_ITEM, answer.text, docs)
    assert score.citations and score.citations_ok and not score.unverified_quotes


# ---------------------------------------------------------------------------- command line


def _error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 1 and "Traceback" not in err
    return err.splitlines()[-1]


def test_cli_errors_are_one_line_and_come_before_loading(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert "give --gold FILE" in _error(capsys, ["eval-answers", str(tmp_path)])
    bad = tmp_path / "gold.json"
    bad.write_text('[{"question": "Q?"}]')
    msg = _error(capsys, ["eval-answers", "--sample", "--gold", str(bad)])
    assert msg.startswith("error: ") and "no reference answer" in msg
    msg = _error(capsys, ["eval-answers", "--sample", "--gold", str(tmp_path / "none.json")])
    assert "gold file not found" in msg
    good = tmp_path / "good.json"
    good.write_text('[{"question": "Q?", "answer": "A"}]')
    msg = _error(
        capsys, ["eval-answers", "--sample", "--gold", str(good), "--banned", "/no/file.txt"]
    )
    assert "banned-phrases file not found" in msg
    with pytest.raises(SystemExit) as exc:
        main(["eval-answers", "--sample", "--min", "1.5"])
    assert exc.value.code == 2
    assert "must be a number in [0, 1]" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_offline_gate_on_the_sample_manual(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sample manual's own questions, answered offline: the floor decides the exit code."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    # A floor above the measured rate fails the gate: exit code 1 and a one-line reason.
    assert main(["eval-answers", "--sample", "--json", "--min", "1"]) == 1
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    summary = out["summary"]
    assert summary["questions"] == 10 and summary["gate"] == "fail" and summary["min"] == 1
    assert summary["correct_abstentions"] == 1  # q10, the electric car
    assert summary["invalid_citations"] == 0 and summary["unsupported_citations"] == 0
    passed = summary["passed"]
    assert 4 <= passed < 10  # 5 measured (docs/benchmarks.md); paraphrases defeat the offline mode
    assert [q["id"] for q in out["questions"]][:2] == ["q01", "q02"]
    assert out["questions"][0]["passed"] and out["questions"][0]["citations"]
    assert captured.err.strip().splitlines()[-1] == (
        f"error: {passed}/10 questions pass ({passed / 10:.2f}), below --min 1"
    )


@pytest.mark.slow
def test_cli_gate_with_a_real_chat_openai_client_on_loopback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`--llm openai:...` through the real ChatOpenAI client against a local stub server."""
    pytest.importorskip("langchain_openai")
    from tests.openai_stub_server import StubOpenAIServer

    gold = tmp_path / "gold.jsonl"
    gold.write_text(
        "\n".join(
            json.dumps(item)
            for item in [
                {
                    "id": "e217",
                    "question": "What does error E-217 mean?",
                    "answer": "A cell voltage imbalance above 180 mV within one module.",
                },
                {
                    "id": "reset",
                    "question": "What does lumenctl --reset-bms do?",
                    "answer": "It restarts the battery management systems of all modules.",
                },
                {
                    "id": "car",
                    "question": "Can the Lumen-7 charge my electric car?",
                    "answer": "The manual does not say.",
                    "has_answer": False,
                },
            ]
        )
    )
    banned = tmp_path / "banned.txt"
    banned.write_text("# phrases a support bot must not use\nas an AI language model\n")
    replies = [
        "Error E-217 means a cell voltage imbalance above 180 mV within one module [1][2][3][4].",
        "As an AI language model, I can say it restarts the battery management systems of all "
        "modules [1][2][3][4].",
        "I cannot answer this question from the provided sources.",
    ]
    for var in ("OPENAI_BASE_URL", "OPENAI_API_BASE", "OPENAI_ORGANIZATION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with StubOpenAIServer(replies) as server:
        monkeypatch.setenv("OPENAI_API_KEY", "test")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        argv = ["eval-answers", "--sample", "--gold", str(gold), "--banned", str(banned)]
        argv += ["--llm", "openai:gpt-4o-mini", "--json", "--min", "0.6"]
        assert main(argv) == 0
        assert len(server.requests) == 3
        assert "E-217" in server.requests[0]["messages"][-1]["content"]
    out = json.loads(capsys.readouterr().out)
    by_id = {q["id"]: q for q in out["questions"]}
    assert by_id["e217"]["passed"] and by_id["e217"]["recall"] == 1.0
    assert by_id["reset"]["banned_phrases"] == ["as an AI language model"]
    assert not by_id["reset"]["passed"]
    assert by_id["car"]["abstained"] and by_id["car"]["passed"]
    assert out["summary"]["passed"] == 2 and out["summary"]["gate"] == "pass"


# ---------------------------------------------------------------------------- QA chain options


def test_qa_chain_uses_the_retrievers_embeddings_for_sentences() -> None:
    from langchain_core.embeddings import DeterministicFakeEmbedding

    from langchain_fusion.retriever import FusionRetriever

    emb = DeterministicFakeEmbedding(size=8)
    retriever = FusionRetriever.from_texts([WARRANTY, SAFETY], emb, k=2)
    chain = build_qa_chain(retriever, llm=False)
    assert chain.embeddings is retriever.index.embeddings
    # Its cosine scale is unknown: a similarity threshold is only set for the bundled model.
    assert chain.min_similarity is None
    assert build_qa_chain(retriever, llm=False, min_similarity=0.8).min_similarity == 0.8
    off = build_qa_chain(retriever, llm=False, embeddings=False)
    assert off.embeddings is None and off.min_similarity is None
    result = chain.invoke("How long are the inverter and the gateway covered?")
    assert result.extractive is not None and result.extractive.sentences[0].similarity is not None
    # A plain Runnable has no embeddings: word coverage alone, as before.
    assert build_qa_chain(RunnableLambda(lambda q: SOURCES), llm=False).embeddings is None
    with pytest.raises(ValueError, match="min_similarity must be 'auto', None or a number"):
        build_qa_chain(retriever, llm=False, min_similarity=2.0)
    with pytest.raises(TypeError, match="embeddings must be a LangChain Embeddings model"):
        build_qa_chain(retriever, llm=False, embeddings="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="is blank"):
        build_qa_chain(retriever, llm=False, banned_phrases=[""])


def test_qa_chain_verifier_reports_banned_phrases() -> None:
    from langchain_core.language_models import FakeListChatModel

    model = FakeListChatModel(responses=["As an AI language model: ten years [1]."])
    chain = build_qa_chain(
        RunnableLambda(lambda q: SOURCES), model, banned_phrases=["as an AI language model"]
    )
    result = chain.invoke("How long is the warranty?")
    assert result.verification is not None
    assert result.verification.banned_phrases == ["as an AI language model"]
    assert not result.verification.ok
