"""Metrics pinned to hand-computed values (confusion matrices written out below), and to scipy where it applies."""

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import stats

from scalearn.metrics import (
    METRICS,
    accuracy,
    compute,
    exact_match,
    f1_binary,
    f1a,
    macro_f1,
    matthews_corrcoef,
    multilabel_macro_f1,
    multirc_em,
    normalize_answer,
    pearson,
    record_metrics,
    spearman,
    token_f1,
)

# -- classification ---------------------------------------------------------------------------------


def test_accuracy_on_lists_arrays_and_tensors():
    predictions, labels = [0, 1, 1, 0, 1], [0, 1, 0, 0, 0]  # 3 of 5 right
    assert accuracy(predictions, labels) == pytest.approx(0.6)
    assert accuracy(np.array(predictions), torch.tensor(labels)) == pytest.approx(0.6)


def test_f1_binary_by_hand_for_either_positive_class():
    predictions = [1, 1, 1, 0, 1, 0]
    labels = [1, 0, 0, 1, 1, 0]
    # positive=1: TP = {0, 4} = 2, FP = {1, 2} = 2, FN = {3} = 1  ->  2*2 / (2*2 + 2 + 1) = 4/7
    assert f1_binary(predictions, labels) == pytest.approx(4 / 7)
    # positive=0: TP = {5} = 1, FP = {3} = 1, FN = {1, 2} = 2  ->  2 / (2 + 1 + 2) = 2/5
    assert f1_binary(predictions, labels, positive=0) == pytest.approx(2 / 5)


def test_f1_binary_is_zero_without_any_positive_and_refuses_three_classes():
    assert f1_binary([0, 0, 0], [0, 0, 0]) == 0.0
    with pytest.raises(ValueError, match="macro_f1"):
        f1_binary([0, 1, 2], [0, 1, 1])


def test_f1a_is_binary_f1_over_all_options():
    assert f1a is f1_binary


def test_macro_f1_with_a_class_never_predicted():
    labels = [0, 0, 1, 1, 2, 2]
    predictions = [0, 0, 1, 0, 1, 1]
    # confusion (rows true, columns predicted):
    #          p0 p1 p2
    #   t0  [  2  0  0 ]
    #   t1  [  1  1  0 ]
    #   t2  [  0  2  0 ]
    # class 0: TP 2, FP 1, FN 0 -> 4/5;  class 1: TP 1, FP 2, FN 1 -> 2/5;  class 2: TP 0 -> 0
    # macro = (0.8 + 0.4 + 0) / 3 = 0.4
    assert macro_f1(predictions, labels) == pytest.approx(0.4)
    assert macro_f1(predictions, labels, num_labels=3) == pytest.approx(0.4)


def test_macro_f1_counts_a_class_seen_only_in_predictions_but_not_an_absent_one():
    labels = [0, 0, 1]
    predictions = [0, 2, 1]
    # class 0: TP 1, FP 0, FN 1 -> 2/3;  class 1: TP 1 -> 1;  class 2 (predicted only): FP 1 -> 0
    expected = (2 / 3 + 1 + 0) / 3
    assert macro_f1(predictions, labels) == pytest.approx(expected)
    # class 3 appears nowhere: as sklearn's average='macro', it is not averaged in
    assert macro_f1(predictions, labels, num_labels=4) == pytest.approx(expected)
    with pytest.raises(ValueError, match=r"outside \[0, 2\)"):
        macro_f1(predictions, labels, num_labels=2)


def test_mcc_binary_matches_the_2x2_formula():
    # TP 3, TN 4, FP 1, FN 2  ->  (3*4 - 1*2) / sqrt((3+1)(3+2)(4+1)(4+2)) = 10 / sqrt(600) = 1/sqrt(6)
    labels = [1, 1, 1, 0, 0, 0, 0, 0, 1, 1]
    predictions = [1, 1, 1, 0, 0, 0, 0, 1, 0, 0]
    assert matthews_corrcoef(predictions, labels) == pytest.approx(1 / math.sqrt(6))
    assert matthews_corrcoef(labels, labels) == pytest.approx(1.0)
    assert matthews_corrcoef([1 - y for y in labels], labels) == pytest.approx(-1.0)


def test_mcc_three_classes_by_the_general_formula():
    # confusion as in the macro-F1 test: [[2,0,0],[1,1,0],[0,2,0]]; n = 6, correct c = 3,
    # true per class t = (2,2,2), predicted per class p = (3,3,0)
    # (c*n - t.p) / sqrt((n^2 - p.p)(n^2 - t.t)) = (18 - 12) / sqrt((36 - 18)(36 - 12)) = 6 / sqrt(432) = 1/(2 sqrt 3)
    labels = [0, 0, 1, 1, 2, 2]
    predictions = [0, 0, 1, 0, 1, 1]
    assert matthews_corrcoef(predictions, labels) == pytest.approx(1 / (2 * math.sqrt(3)))


def test_mcc_is_zero_when_undefined():
    assert matthews_corrcoef([1, 1, 1, 1], [0, 1, 0, 1]) == 0.0  # constant predictions
    assert matthews_corrcoef([0, 1, 0, 1], [2, 2, 2, 2]) == 0.0  # constant labels


def test_multilabel_macro_f1_counts_a_label_never_true_nor_predicted_as_zero():
    labels = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0]])
    predictions = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    # label 0: true rows {0,1}, predicted {0,2}: TP 1, FP 1, FN 1 -> 2/4 = 0.5
    # label 1: true {1,2}, predicted {1,2} -> 1.0
    # label 2: never true nor predicted -> 0.0 (zero_division=0; excluding it would give 0.75, scoring 1 gives 0.83)
    assert multilabel_macro_f1(predictions, labels) == pytest.approx(0.5)
    assert multilabel_macro_f1(torch.tensor(predictions).bool(), torch.tensor(labels)) == pytest.approx(0.5)


def test_multilabel_macro_f1_refuses_probabilities_and_mismatched_shapes():
    with pytest.raises(ValueError, match="threshold"):
        multilabel_macro_f1([[0.7, 0.2]], [[1, 0]])
    with pytest.raises(ValueError, match="one shape"):
        multilabel_macro_f1([[1, 0]], [[1, 0, 0]])


def test_multirc_em_groups_options_by_paragraph_and_question():
    question_ids = [(0, 0), (0, 0), (0, 1), (0, 1), (1, 0), (1, 0), (1, 0)]
    labels = [1, 0, 1, 1, 0, 0, 1]
    predictions = [1, 0, 1, 0, 0, 0, 1]
    # (0,0): all right; (0,1): one option wrong; (1,0): all right -> 2/3
    # (grouping by question index alone would merge (0,0) with (1,0) and give 1/2)
    assert multirc_em(predictions, labels, question_ids) == pytest.approx(2 / 3)
    assert multirc_em(predictions, labels, np.array(question_ids)) == pytest.approx(2 / 3)
    assert multirc_em(predictions, labels, ["a", "a", "b", "b", "c", "c", "c"]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="question ids"):
        multirc_em(predictions, labels, question_ids[:-1])


# -- regression -------------------------------------------------------------------------------------


def test_pearson_and_spearman_by_hand():
    # x - mean = (-1, 0, 1), y - mean = (-1, 1, 0): r = 1 / sqrt(2 * 2) = 0.5; the values are their own ranks
    assert pearson([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert spearman([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    # an outlier: ranks agree exactly, values do not.
    # dx = (-1.5, -.5, .5, 1.5), dy = (-25.5, -24.5, -23.5, 73.5): r = 149 / sqrt(5 * 7205)
    assert pearson([1, 2, 3, 4], [1, 2, 3, 100]) == pytest.approx(149 / math.sqrt(5 * 7205))
    assert spearman([1, 2, 3, 4], [1, 2, 3, 100]) == pytest.approx(1.0)
    # ties take the mean rank: ranks x = (1, 2.5, 2.5, 4), y = (1, 3, 2, 4) -> 4.5 / sqrt(4.5 * 5) = 3/sqrt(10)
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(3 / math.sqrt(10))


def test_pearson_and_spearman_match_scipy_and_take_a_regression_head_output():
    rng = np.random.default_rng(0)
    labels = rng.uniform(0, 5, size=40)
    predictions = labels + rng.normal(0, 1.5, size=40)
    assert pearson(predictions, labels) == pytest.approx(stats.pearsonr(predictions, labels).statistic)
    assert spearman(predictions, labels) == pytest.approx(stats.spearmanr(predictions, labels).statistic)
    head_output = torch.tensor(predictions, dtype=torch.bfloat16)[:, None]  # [N, 1], a dtype numpy lacks
    assert pearson(head_output, labels) == pytest.approx(pearson(predictions, labels), abs=1e-2)


def test_correlations_of_constant_input_are_zero_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pearson([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]) == 0.0
        assert spearman([1.0, 2.0, 3.0], [4.0, 4.0, 4.0]) == 0.0
        pearson([1.0, 1.0 + 1e-15, 1.0], [1.0, 2.0, 3.0])  # scipy warns "nearly constant"; we keep it quiet


# -- ReCoRD / SQuAD text answers --------------------------------------------------------------------


def test_normalize_answer():
    assert normalize_answer("  The Cat's   hat, An apple!") == "cats hat apple"
    assert normalize_answer("Theory of a thing") == "theory of thing"  # 'the' inside a word stays


def test_token_f1_partial_overlap_and_multiplicity():
    # "cat sat" vs "cat sat down": shared 2, precision 2/2, recall 2/3 -> 2 * (2/3) / (5/3) = 4/5
    assert token_f1("the cat sat", "a cat sat down") == pytest.approx(0.8)
    # shared tokens count with multiplicity, min of the two counts: "cat" x2 shared, precision 2/2, recall 2/3 -> 4/5
    assert token_f1("cat cat", "cat cat sat") == pytest.approx(0.8)
    # ... and no more than the smaller count: 1 shared, precision 1/3, recall 1 -> 1/2
    assert token_f1("cat cat cat", "cat") == pytest.approx(0.5)
    assert token_f1("dog", "cat") == 0.0


def test_exact_match_after_normalisation():
    assert exact_match("The Eiffel Tower.", "eiffel   tower") == 1.0
    assert exact_match("Eiffel Towers", "eiffel tower") == 0.0
    # answers that normalise to nothing: EM 1 but token F1 0, as in the official ReCoRD/SQuAD v1.1 scripts
    assert exact_match("The", "a") == 1.0
    assert token_f1("The", "a") == 0.0


def test_record_metrics_take_the_best_gold_and_score_missing_queries_zero():
    predictions = {"q1": "Barack Obama", "q2": "the cat", "q9": "not asked"}
    answers = {"q1": ["Obama", "Barack Obama"], "q2": ["a dog", "cat sat"], "q3": ["Paris"]}
    # q1: F1 max(2/3, 1) = 1, EM 1;  q2: F1 max(0, 2/3) = 2/3, EM 0;  q3: no prediction -> 0, 0
    scores = record_metrics(predictions, answers)
    assert scores["f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert scores["em"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="no gold"):
        record_metrics({"q1": "x"}, {"q1": []})


# -- registry and input checks ----------------------------------------------------------------------


def test_registry_names():
    assert set(METRICS) == {"accuracy", "f1", "macro_f1", "mcc", "pearson", "spearman", "multilabel_macro_f1"}


def test_compute_several_metrics_at_once():
    labels = torch.tensor([1, 1, 1, 0, 0, 0, 0, 0, 1, 1])
    predictions = torch.tensor([1, 1, 1, 0, 0, 0, 0, 1, 0, 0])  # the 2x2 MCC case: TP 3, TN 4, FP 1, FN 2
    scores = compute(["accuracy", "f1", "mcc"], predictions, labels)
    assert scores == pytest.approx({"accuracy": 0.7, "f1": 6 / 9, "mcc": 1 / math.sqrt(6)})
    assert compute("accuracy", predictions, labels) == pytest.approx({"accuracy": 0.7})


def test_compute_names_the_known_metrics_for_an_unknown_one():
    with pytest.raises(ValueError, match=r"unknown metric.*'acc'.*known:.*'accuracy'"):
        compute(["acc"], [0], [0])


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="3 predictions for 2 labels"):
        accuracy([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="argmax"):
        accuracy(np.zeros((4, 3)), [0, 1, 2, 0])
    with pytest.raises(ValueError, match="no predictions"):
        accuracy([], [])


def test_the_constant_loss_is_what_the_best_constant_prediction_scores_under_the_heads_loss():
    """Each kind's floor equals the head's own loss of the optimal constant (mean; label distribution; label
    rates), and no other constant goes below it."""
    from torch.nn import functional as F

    from scalearn.metrics import constant_loss

    scores = torch.tensor([1.0, 2.0, 3.0, 6.0])
    assert constant_loss("regression", scores) == pytest.approx(F.mse_loss(scores.mean().expand(4), scores).item())
    assert constant_loss("regression", scores) < F.mse_loss(torch.full((4,), 2.5), scores).item()

    classes = torch.tensor([0, 0, 1, 2, 0, 2])
    prior = torch.bincount(classes).float() / len(classes)
    logits = prior.log().expand(len(classes), 3)
    assert constant_loss("classification", classes) == pytest.approx(F.cross_entropy(logits, classes).item())
    assert constant_loss("classification", classes) < F.cross_entropy(torch.zeros(6, 3), classes).item()  # uniform
    assert constant_loss("multiple_choice", classes) == constant_loss("classification", classes)

    labels = torch.tensor([[1, 0], [1, 1], [0, 0], [1, 0]]).float()
    rates = labels.mean(0)
    constant = torch.logit(rates).expand(4, 2)
    expected = F.binary_cross_entropy_with_logits(constant, labels).item()
    assert constant_loss("multi_label", labels) == pytest.approx(expected, rel=1e-6)
    assert constant_loss("classification", torch.tensor([1, 1, 1])) == 0.0  # one class: a constant is perfect
    assert constant_loss("regression", []) is None and constant_loss("span", classes) is None
