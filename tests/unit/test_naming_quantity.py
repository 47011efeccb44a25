"""Kubernetes quantities and names: what the API server would accept, computed by hand."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spikebatch.errors import ConfigError
from spikebatch.domain.naming import (
    JOB_TYPE_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    MAX_JOB_NAME,
    MAX_PREFIX_LEN,
    RUN_ID_LABEL,
    is_dns_subdomain,
    is_rfc1123_label,
    label_key_problem,
    label_value_problem,
    make_job_name,
    new_run_id,
    normalize_name_prefix,
    short_token,
)
from spikebatch.domain.quantity import cpu_quantity, memory_quantity, parse_quantity

RFC1123 = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")

# --------------------------------------------------------------------------- quantities

HAND_COMPUTED = [
    ("500m", Decimal("0.5")),
    ("250m", Decimal("0.25")),
    ("2", Decimal(2)),
    ("0.5", Decimal("0.5")),
    (".5", Decimal("0.5")),
    ("+1", Decimal(1)),
    ("1.5", Decimal("1.5")),
    ("100n", Decimal("0.0000001")),
    ("5u", Decimal("0.000005")),
    ("1k", Decimal(1000)),
    ("1M", Decimal(1_000_000)),
    ("1G", Decimal(1_000_000_000)),
    ("1T", Decimal(10**12)),
    ("1P", Decimal(10**15)),
    ("1E", Decimal(10**18)),
    ("1Ki", Decimal(1024)),
    ("512Mi", Decimal(512 * 1024 * 1024)),
    ("8Gi", Decimal(8 * 1024**3)),
    ("1.5Gi", Decimal(1610612736)),
    ("1Ti", Decimal(1024**4)),
    ("1Pi", Decimal(1024**5)),
    ("1Ei", Decimal(1024**6)),
    ("2e3", Decimal(2000)),
    ("1E3", Decimal(1000)),
    ("5e-1", Decimal("0.5")),
    ("1e+2", Decimal(100)),
]


@pytest.mark.parametrize(("text", "expected"), HAND_COMPUTED)
def test_parse_quantity_matches_hand_computed_value(text, expected):
    assert parse_quantity(text) == expected


@pytest.mark.parametrize(
    "text", ["", "abc", "Gi", "1K", "1GB", "1gi", "1 Gi", "-1", "1Gi2", "e3", "1.2.3", "1mi", "1e", "0x10"]
)
def test_parse_quantity_rejects_non_quantities_naming_the_input_and_the_forms(text):
    with pytest.raises(ValueError) as info:
        parse_quantity(text)
    message = str(info.value)
    assert repr(text) in message
    assert "Kubernetes quantity" in message
    assert "500m" in message and "8Gi" in message


_SUFFIX_FACTORS = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}


@given(
    whole=st.integers(min_value=0, max_value=10**9),
    frac=st.one_of(st.none(), st.text(alphabet="0123456789", min_size=1, max_size=6)),
    suffix=st.sampled_from(sorted(_SUFFIX_FACTORS)),
)
def test_parse_quantity_is_number_times_suffix_factor(whole, frac, suffix):
    number = f"{whole}" if frac is None else f"{whole}.{frac}"
    assert parse_quantity(number + suffix) == Decimal(number) * _SUFFIX_FACTORS[suffix]


@given(mantissa=st.integers(min_value=0, max_value=10**6), exponent=st.integers(min_value=-12, max_value=12))
def test_parse_quantity_decimal_exponent(mantissa, exponent):
    assert parse_quantity(f"{mantissa}e{exponent}") == Decimal(mantissa) * Decimal(10) ** exponent


@given(st.text(max_size=20))
def test_parse_quantity_either_parses_or_raises_value_error(text):
    # Any other exception type would escape the models' validators as a crash.
    try:
        value = parse_quantity(text)
    except ValueError:
        return
    assert isinstance(value, Decimal)


@pytest.mark.parametrize("text", ["\uff12", "\u0661Gi", "\uff18Gi"])  # fullwidth 2, Arabic-Indic 1, fullwidth 8
def test_parse_quantity_rejects_non_ascii_digits(text):
    with pytest.raises(ValueError):
        parse_quantity(text)


@pytest.mark.parametrize("text", ["500m", "1", "2", "0.5", "1.5", "100m", "1k", "2e0"])
def test_cpu_quantity_accepts_cores_and_millicores(text):
    assert cpu_quantity(text) == text


def test_cpu_quantity_returns_the_text_without_surrounding_spaces():
    assert cpu_quantity(" 2 ") == "2"


@pytest.mark.parametrize("text", ["0", "0m", "0.0", "0e3"])
def test_cpu_quantity_rejects_zero(text):
    with pytest.raises(ValueError, match="greater than zero"):
        cpu_quantity(text)


@pytest.mark.parametrize("text", ["1Gi", "512Mi", "1Ki"])
def test_cpu_quantity_rejects_memory_suffix(text):
    with pytest.raises(ValueError, match="memory suffix") as info:
        cpu_quantity(text)
    assert "500m" in str(info.value)


def test_cpu_quantity_rejects_non_quantity():
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        cpu_quantity("two")


def test_cpu_quantity_rejects_memory_suffix_with_trailing_space():
    with pytest.raises(ValueError, match="memory suffix"):
        cpu_quantity("1Gi ")


@pytest.mark.parametrize("text", ["8Gi", "512Mi", "1G", "1000", "1.5Gi", "2e9", "128974848"])
def test_memory_quantity_accepts_bytes_forms(text):
    assert memory_quantity(text) == text


@pytest.mark.parametrize("text", ["0", "0Gi", "0.0"])
def test_memory_quantity_rejects_zero(text):
    with pytest.raises(ValueError, match="greater than zero"):
        memory_quantity(text)


@pytest.mark.parametrize("text", ["100m", "5u", "3n"])
def test_memory_quantity_rejects_sub_byte_suffixes(text):
    with pytest.raises(ValueError, match="milli/micro/nano") as info:
        memory_quantity(text)
    assert "Mi" in str(info.value)


@pytest.mark.parametrize("text", ["1e-3", "0.5"])
def test_memory_quantity_rejects_fractions_of_a_byte(text):
    with pytest.raises(ValueError):
        memory_quantity(text)


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("analysis-job", "analysis-job"),
        ("My Analysis Job!", "my-analysis-job"),
        ("analysis_job.v2", "analysis-job-v2"),
        ("--x--", "x"),
        ("Spike  Sorting__Run", "spike-sorting-run"),
        ("job-2024", "job-2024"),
        ("ÄÖÜ-job", "job"),
    ],
)
def test_normalize_name_prefix_examples(raw, expected):
    assert normalize_name_prefix(raw) == expected


def test_normalize_name_prefix_cuts_to_the_references_40():
    assert MAX_PREFIX_LEN == 40
    assert normalize_name_prefix("a" * 100) == "a" * 40


def test_normalize_name_prefix_never_ends_with_dash_after_cutting():
    raw = "a" * 39 + "-bcd"  # the cut at 40 lands right after the dash
    assert normalize_name_prefix(raw) == "a" * 39


def test_normalize_name_prefix_counts_leading_dashes_before_cutting_as_the_reference():
    # strip, lower, replace, collapse, cut to 40, then trim dashes
    assert normalize_name_prefix("-" + "b" * 45) == "b" * 39


@pytest.mark.parametrize("raw", ["", "!!!", "---", " ", "日本語", "___"])
def test_normalize_name_prefix_without_letters_or_digits_is_a_config_error(raw):
    with pytest.raises(ConfigError) as info:
        normalize_name_prefix(raw)
    assert "no letters or digits" in info.value.message
    assert repr(raw) in info.value.message
    assert "analysis-job" in info.value.message  # suggests a valid name


@given(st.text(max_size=120))
def test_normalize_name_prefix_yields_short_rfc1123_label_or_config_error(raw):
    try:
        name = normalize_name_prefix(raw)
    except ConfigError:
        assert not re.search(r"[a-z0-9]", raw.lower())
        return
    assert RFC1123.fullmatch(name)
    assert len(name) <= MAX_PREFIX_LEN
    assert is_rfc1123_label(name)
    assert normalize_name_prefix(name) == name  # idempotent


@given(st.from_regex(r"[a-z0-9]([-a-z0-9]{0,54}[a-z0-9])?", fullmatch=True))
def test_normalize_name_prefix_keeps_a_valid_short_label_unchanged(label):
    if "--" in label:
        # runs of dashes collapse into one; that is the documented normalisation
        assert normalize_name_prefix(label) == re.sub("-+", "-", label)
    else:
        assert normalize_name_prefix(label) == label


def test_make_job_name_with_given_token():
    assert make_job_name("My Job", token="abc123") == "my-job-abc123"


def test_make_job_name_random_token_shape():
    name = make_job_name("analysis-job")
    assert re.fullmatch(r"analysis-job-[a-z0-9]{6}", name)


@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=200).filter(
    lambda s: re.search(r"[A-Za-z0-9]", s)
))
def test_make_job_name_is_a_label_of_at_most_63_chars(raw):
    name = make_job_name(raw)
    assert len(name) <= MAX_JOB_NAME == 63
    assert is_rfc1123_label(name)
    assert label_value_problem(name) is None  # the job-name label on pods holds it


def test_short_token_alphabet_and_length():
    token = short_token()
    assert re.fullmatch(r"[a-z0-9]{6}", token)
    assert re.fullmatch(r"[a-z0-9]{12}", short_token(12))
    assert len({short_token() for _ in range(50)}) > 45  # random, not a constant


def test_new_run_id_is_sortable_stamp_plus_random_suffix():
    now = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    run_id = new_run_id(now)
    assert re.fullmatch(r"20240102-030405-[a-z0-9]{8}", run_id)
    assert label_value_problem(run_id) is None
    assert new_run_id(now) != run_id
    later = new_run_id(datetime(2024, 1, 2, 3, 4, 6, tzinfo=timezone.utc))
    assert later > run_id


def test_new_run_id_defaults_to_now():
    assert re.fullmatch(r"\d{8}-\d{6}-[a-z0-9]{8}", new_run_id())


@pytest.mark.parametrize("value", ["a", "a-b", "0abc", "abc123", "a" * 63, "x-1-y"])
def test_is_rfc1123_label_accepts(value):
    assert is_rfc1123_label(value)


@pytest.mark.parametrize("value", ["", "-a", "a-", "A", "aB", "a_b", "a.b", "a b", "a" * 64, "é"])
def test_is_rfc1123_label_rejects(value):
    assert not is_rfc1123_label(value)


@pytest.mark.parametrize("check", [is_rfc1123_label, is_dns_subdomain], ids=["label", "subdomain"])
def test_name_checks_reject_trailing_newline(check):
    assert not check("lab\n")


@pytest.mark.parametrize("value", ["a", "a.b", "my-secret", "s3.creds-1", "a" * 253])
def test_is_dns_subdomain_accepts(value):
    assert is_dns_subdomain(value)


@pytest.mark.parametrize("value", ["", "a..b", ".a", "a.", "A.b", "a_b", "my secret", "a" * 254])
def test_is_dns_subdomain_rejects(value):
    assert not is_dns_subdomain(value)


@pytest.mark.parametrize(
    "key", ["app", "A1", "a_b.c-d", "app.kubernetes.io/name", "example.com/Team_1", "x" * 63, RUN_ID_LABEL]
)
def test_label_key_problem_accepts(key):
    assert label_key_problem(key) is None


@pytest.mark.parametrize("key", ["", "-app", "app-", "_a", "a b", "x" * 64, "x/", "ä"])
def test_label_key_problem_names_a_bad_name(key):
    problem = label_key_problem(key)
    assert problem is not None
    assert repr(key) in problem and "1-63 characters" in problem


@pytest.mark.parametrize("key", ["Bad_Prefix/x", "EXAMPLE.com/x", "a/b/c", "a..b/c"])
def test_label_key_problem_names_a_bad_prefix(key):
    problem = label_key_problem(key)
    assert problem is not None
    assert "prefix" in problem and repr(key.rpartition("/")[0]) in problem


def test_label_key_problem_rejects_empty_prefix():
    assert label_key_problem("/foo") is not None


def test_label_checks_reject_trailing_newline():
    assert label_key_problem("app\n") is not None
    assert label_value_problem("v1\n") is not None


@pytest.mark.parametrize("value", ["", "v1", "v1.2_3-x", "A", "x" * 63, MANAGED_BY_VALUE])
def test_label_value_problem_accepts(value):
    assert label_value_problem(value) is None


@pytest.mark.parametrize("value", ["x" * 64, "-x", "x-", "x y", "é", "a/b"])
def test_label_value_problem_rejects(value):
    problem = label_value_problem(value)
    assert problem is not None
    assert repr(value) in problem and "63 characters" in problem


def test_spikebatch_labels_are_valid_label_keys():
    for key in (RUN_ID_LABEL, JOB_TYPE_LABEL, MANAGED_BY_LABEL):
        assert label_key_problem(key) is None
    assert MANAGED_BY_LABEL == "app.kubernetes.io/managed-by"
    assert MANAGED_BY_VALUE == "spikebatch"


def test_label_key_problem_empty_prefix_message_says_what_to_do():
    problem = label_key_problem("/foo")
    assert "'/foo'" in problem and "empty prefix" in problem


@pytest.mark.parametrize(("text", "ok"), [("0.3Ki", False), ("1.5Ki", True), ("1e0", True), ("2.5", False)])
def test_memory_quantity_whole_bytes_after_scaling(text, ok):
    if ok:
        assert memory_quantity(text) == text
    else:
        with pytest.raises(ValueError, match="whole number of bytes"):
            memory_quantity(text)
